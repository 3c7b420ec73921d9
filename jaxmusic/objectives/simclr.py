"""`objective.name = "simclr"`: CLMR's SimCLR, two independent crops of a clip as a pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from jaxmusic.data.pipeline import Inputs
from jaxmusic.objectives.contrastive import ContrastiveObjective, build_contrastive


def default_config() -> ml_collections.ConfigDict:
    """`objective.simclr`: CLMR's projector and temperature."""
    c = ml_collections.ConfigDict()
    c.projector_dims = (512, 64)
    c.temperature = 0.5
    return c


def build(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> ContrastiveObjective:
    """SimCLR around the config's encoder."""
    del manifest, workdir  # self-supervised: no labels; no assets
    return build_contrastive(config, "simclr", Inputs(crop="independent", num_views=2))
