"""The stage between the input pipeline and every model: dequantise, then augment.

Shared by training (with the augmentation chain) and embedding (without), so int16
PCM becomes float audio in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmusic.augment import AugmentSpec, augment_batch

Batch = dict[str, Any]


def dequantize(audio: jax.Array) -> jax.Array:
    """int16 PCM -> float32 in [-1, 1)."""
    return audio.astype(jnp.float32) / 32768.0


def make_preprocess(spec: AugmentSpec | None) -> Callable[[Batch, jax.Array | None], Batch]:
    """`preprocess(batch, key) -> batch`: `audio` int16 [B, views, T] becomes float32,
    augmented per view from `key` when `spec` is given (training), left clean when
    `spec` is None (embedding, or measuring what the chain costs)."""

    def preprocess(batch: Batch, key: jax.Array | None) -> Batch:
        audio = dequantize(batch["audio"])
        if spec is not None:
            audio = augment_batch(audio, key, spec)
        return {**batch, "audio": audio}

    return preprocess
