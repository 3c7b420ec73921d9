"""Heads that sit on an encoder's embedding."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax


class Projector(nn.Module):
    """SimCLR's projection MLP: Dense -> ReLU -> ... -> Dense, without biases as in CLMR."""

    dims: Sequence[int] = (512, 64)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, d in enumerate(self.dims):
            x = nn.Dense(d, use_bias=False)(x)
            if i < len(self.dims) - 1:
                x = nn.relu(x)
        return x
