"""Encoders by name, built from a config's `model` section.

The one place that maps configuration to modules, so the trainer, `embed` and later
the HEAR API all build the same encoder from the same config.
"""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from jaxmusic.models.samplecnn import SampleCNN, receptive_samples


def build_encoder(cfg: ml_collections.ConfigDict) -> nn.Module:
    """The encoder named by `cfg.name`."""
    if cfg.name == "samplecnn":
        return SampleCNN(
            first_channels=cfg.first_channels,
            block_channels=tuple(cfg.block_channels),
            final_channels=cfg.final_channels,
        )
    raise ValueError(f"unknown model.name '{cfg.name}' (known: samplecnn)")


def input_hop(cfg: ml_collections.ConfigDict) -> int:
    """Input lengths the encoder accepts are multiples of this many samples."""
    if cfg.name == "samplecnn":
        return receptive_samples(len(cfg.block_channels))
    raise ValueError(f"unknown model.name '{cfg.name}' (known: samplecnn)")
