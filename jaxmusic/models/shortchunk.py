"""Won et al. 2020's short-chunk CNN and short-chunk ResNet (sota-music-tagging-models).

Both read 59,049 samples (3.69 s) at 16 kHz as a 128-bin log-mel (n_fft 512, hop 256,
f_max 8 kHz: `model.logmel`'s defaults), normalise it with one BatchNorm, run seven
stages with channels n*(1, 1, 2, 2, 2, 2, 4) (n = 128), max-pool the one remaining
frequency bin and then time, and end in Dense(4n) + BN + ReLU + dropout 0.5, whose
output ("pooled") feeds the 50-tag classifier (not part of the encoder here).

- CNN: each stage is Conv 3x3 + BN + ReLU + 2x2 max-pool (the FCN module of fcn.py
  with those widths). 3,661,698 encoder parameters, 3,687,348 with the 50-tag layer
  (the PyTorch model's count; the limited-data paper's "VGGish", 3.7M).
- ResNet: each stage is a residual block, Conv 3x3 stride 2 + BN + ReLU + Conv 3x3 + BN,
  plus a Conv 3x3 stride 2 + BN shortcut, summed, ReLU. 12,078,594 encoder parameters,
  12,104,244 with the 50-tag layer.

Padding is one bin on every side, as in the PyTorch code, so stride-2 stages give
ceil(n / 2): the ResNet accepts any length, the CNN (floor pooling) needs 2^stages
frames. `norm="layer"` swaps batch statistics for per-example ones (see fcn.py).
The module exposes two registry entries, `CNN` and `RESNET`, each a namespace with
`default_config`, `from_config` and `input_lengths`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.models import fcn, frontend
from jaxmusic.models.frontend import LogMel

WON_MULTIPLIERS = (1, 1, 2, 2, 2, 2, 4)
_PAD = ((1, 1), (1, 1))


def _default_config() -> ml_collections.ConfigDict:
    """`model.shortchunk_cnn` / `model.shortchunk_resnet`: Won et al.'s widths (n = 128)."""
    c = ml_collections.ConfigDict()
    c.n_channels = 128
    c.multipliers = WON_MULTIPLIERS  # stage widths are n_channels * multiplier
    c.dropout = 0.5
    c.norm = "batch"  # or "layer": no batch statistics (exact gradient accumulation)
    return c


def _widths(c: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The stage widths n_channels * multipliers."""
    return tuple(int(c.n_channels) * int(m) for m in c.multipliers)


class ResidualBlock(nn.Module):
    """Won et al.'s Res_2d: two 3x3 convs (the first strided) plus a strided conv shortcut."""

    channels: int
    stride: int = 2
    norm: str = "batch"
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        norm = lambda: fcn.make_norm(self.norm, train, self.bn_momentum, self.dtype)
        strides = (self.stride, self.stride)
        out = nn.Conv(self.channels, (3, 3), strides=strides, padding=_PAD, dtype=self.dtype)(x)
        out = nn.relu(norm()(out))
        out = norm()(nn.Conv(self.channels, (3, 3), padding=_PAD, dtype=self.dtype)(out))
        if self.stride != 1 or x.shape[-1] != self.channels:
            x = norm()(nn.Conv(self.channels, (3, 3), strides=strides, padding=_PAD, dtype=self.dtype)(x))
        return nn.relu(x + out)


class ShortChunkResNet(nn.Module):
    """Log-mel ResNet: audio [B, samples] -> {"pooled": [B, channels[-1]], "frames": [B, T, channels[-1]]}."""

    logmel: LogMel = dataclasses.field(default_factory=LogMel)
    channels: Sequence[int] = tuple(128 * m for m in WON_MULTIPLIERS)
    dropout: float = 0.5
    norm: str = "batch"
    bn_momentum: float = 0.9  # PyTorch's default (0.1 update), which Won et al. train with
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool) -> dict[str, jax.Array]:
        fcn.check_norm(self.norm)
        x = fcn.spectrogram_input(self.logmel, audio, train, 1, "ShortChunkResNet").astype(self.dtype)
        x = fcn.make_norm(self.norm, train, self.bn_momentum, self.dtype, whole_input=True)(x)
        for ch in self.channels:
            x = ResidualBlock(ch, norm=self.norm, bn_momentum=self.bn_momentum, dtype=self.dtype)(x, train)
        frames = jnp.max(x, axis=2)
        head = fcn.EmbeddingHead(self.channels[-1], self.dropout, self.norm, self.bn_momentum, self.dtype)
        pooled = head(jnp.max(frames, axis=1), train)
        return {"pooled": pooled.astype(jnp.float32), "frames": frames.astype(jnp.float32)}


def _cnn_from_config(model: ml_collections.ConfigDict, dtype: Any) -> fcn.FCN:
    """The short-chunk CNN of `model.shortchunk_cnn` on the log-mel of `model.logmel`."""
    c = model.shortchunk_cnn
    fcn.check_norm(c.norm)
    widths = _widths(c)
    return fcn.FCN(
        logmel=frontend.logmel_from_config(model),
        channels=widths,
        freq_pools=(2,) * len(widths),
        time_pools=(2,) * len(widths),
        global_pool="max",
        embedding_dim=widths[-1],
        dropout=float(c.dropout),
        norm=c.norm,
        dtype=dtype,
    )


def _cnn_input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, 1): 2^stages frames survive the floor pooling; any longer length works."""
    frames = 2 ** len(model.shortchunk_cnn.multipliers)
    return frontend.samples_for_frames(frames, model.logmel.n_fft, model.logmel.hop_length), 1


def _resnet_from_config(model: ml_collections.ConfigDict, dtype: Any) -> ShortChunkResNet:
    """The short-chunk ResNet of `model.shortchunk_resnet` on the log-mel of `model.logmel`."""
    c = model.shortchunk_resnet
    fcn.check_norm(c.norm)
    return ShortChunkResNet(
        logmel=frontend.logmel_from_config(model),
        channels=_widths(c),
        dropout=float(c.dropout),
        norm=c.norm,
        dtype=dtype,
    )


def _resnet_input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, 1): stride-2 stages round up, so one frame (one sample) is enough."""
    return frontend.samples_for_frames(1, model.logmel.n_fft, model.logmel.hop_length), 1


CNN = SimpleNamespace(
    default_config=_default_config, from_config=_cnn_from_config, input_lengths=_cnn_input_lengths
)
RESNET = SimpleNamespace(
    default_config=_default_config, from_config=_resnet_from_config, input_lengths=_resnet_input_lengths
)
