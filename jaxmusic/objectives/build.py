"""Objectives by name, built from a config.

The trainer sees an objective only through `init(rng, views) -> variables` and
`loss(params, batch_stats, views, rng) -> (loss, (batch_stats, metrics))`; every
objective names its encoder submodule `encoder`, which is what `embed` extracts.
"""

from __future__ import annotations

import ml_collections

from jaxmusic.models.build import build_encoder
from jaxmusic.objectives.contrastive import ContrastiveObjective


def build_objective(config: ml_collections.ConfigDict) -> ContrastiveObjective:
    """The objective named by `config.objective.name`, around the config's encoder."""
    cfg = config.objective
    if cfg.name == "simclr":
        return ContrastiveObjective(
            encoder=build_encoder(config.model),
            projector_dims=tuple(cfg.projector_dims),
            temperature=float(cfg.temperature),
        )
    raise ValueError(f"unknown objective.name '{cfg.name}' (known: simclr)")
