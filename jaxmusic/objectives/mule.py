"""`objective.name = "mule"`: MULE-style contrastive learning (McCallum et al., ISMIR 2022).

SimCLR's loss, but the positive pair is two windows of the same track some seconds
apart rather than two augmented crops of one moment, and the temperature is 0.1; the
paper trains on log-mel. The gap between the windows' starts is drawn uniformly in
[min_gap_s, max_gap_s] (clamped to what the track allows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs
from jaxmusic.objectives.contrastive import ContrastiveObjective, build_contrastive


def default_config() -> ml_collections.ConfigDict:
    """`objective.mule`: projector, temperature and the window gap."""
    c = ml_collections.ConfigDict()
    c.projector_dims = (512, 128)
    c.temperature = 0.1
    c.min_gap_s = 0.0
    c.max_gap_s = 10.0
    return c


def build(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> ContrastiveObjective:
    """MULE around the config's encoder; gaps in seconds become samples at the data's rate."""
    del workdir  # no assets
    c = config.objective.mule
    if not 0 <= c.min_gap_s <= c.max_gap_s:
        raise ConfigError(
            f"objective.mule needs 0 <= min_gap_s <= max_gap_s, got {c.min_gap_s}, {c.max_gap_s}"
        )
    rate = manifest["sample_rate"]
    inputs = Inputs(crop="gap", min_gap=round(c.min_gap_s * rate), max_gap=round(c.max_gap_s * rate))
    return build_contrastive(config, "mule", inputs)
