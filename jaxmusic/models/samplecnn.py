"""SampleCNN (Lee et al. 2017) as CLMR uses it: a raw-waveform encoder.

CLMR's layout: Conv(1->128, k3, stride 3) + BN + ReLU; nine blocks of
Conv(k3, pad 1) + BN + ReLU + MaxPool(3) with channels 128, 128, 256, 256, 256, 256,
256, 256, 512; then Conv(512->512, k3, pad 1) + BN + ReLU. With 59,049 = 3^10 input
samples the time axis is 1 at the end and the output is 512-d; the encoder has
2,368,512 parameters (convolutions with bias, BatchNorm scale and bias).

Depth and width are fields, so tiny variants exist for tests and CPU runs. The input
length must be a multiple of 3^(blocks+1); when it is longer than 3^(blocks+1) the
remaining frames are averaged (for CLMR's configuration there is exactly one).
The output is `{"pooled": [B, final_channels], "frames": [B, frames, final_channels]}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

CLMR_BLOCK_CHANNELS = (128, 128, 256, 256, 256, 256, 256, 256, 512)


def receptive_samples(num_blocks: int) -> int:
    """The input length that the stride-3 stem and `num_blocks` pools reduce to one frame."""
    return 3 ** (num_blocks + 1)


class SampleCNN(nn.Module):
    """Raw waveform [batch, samples] -> {"pooled": [batch, final_channels], "frames": ...}."""

    first_channels: int = 128
    block_channels: Sequence[int] = CLMR_BLOCK_CHANNELS
    final_channels: int = 512
    # BatchNorm momentum as in PyTorch's default (0.1 update), which CLMR trains with.
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool) -> jax.Array:
        hop = receptive_samples(len(self.block_channels))
        if audio.ndim != 2 or audio.shape[-1] % hop:
            raise ValueError(
                f"SampleCNN with {len(self.block_channels)} blocks takes [batch, k*{hop}] samples, "
                f"got shape {audio.shape}"
            )
        norm = lambda: nn.BatchNorm(
            use_running_average=not train, momentum=self.bn_momentum, dtype=self.dtype
        )
        x = audio[..., None].astype(self.dtype)
        x = nn.Conv(self.first_channels, (3,), strides=(3,), padding="VALID", dtype=self.dtype)(x)
        x = nn.relu(norm()(x))
        for channels in self.block_channels:
            x = nn.Conv(channels, (3,), padding=((1, 1),), dtype=self.dtype)(x)
            x = nn.relu(norm()(x))
            x = nn.max_pool(x, (3,), strides=(3,))
        x = nn.Conv(self.final_channels, (3,), padding=((1, 1),), dtype=self.dtype)(x)
        frames = nn.relu(norm()(x)).astype(jnp.float32)
        return {"pooled": jnp.mean(frames, axis=1), "frames": frames}


def default_config() -> ml_collections.ConfigDict:
    """`model.samplecnn`: CLMR's configuration."""
    c = ml_collections.ConfigDict()
    c.first_channels = 128
    c.block_channels = CLMR_BLOCK_CHANNELS
    c.final_channels = 512
    return c


def from_config(model: ml_collections.ConfigDict, dtype: Any) -> SampleCNN:
    """The SampleCNN of `model.samplecnn`."""
    c = model.samplecnn
    return SampleCNN(
        first_channels=c.first_channels,
        block_channels=tuple(c.block_channels),
        final_channels=c.final_channels,
        dtype=dtype,
    )


def input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, multiple): inputs are whole multiples of the receptive field."""
    hop = receptive_samples(len(model.samplecnn.block_channels))
    return hop, hop
