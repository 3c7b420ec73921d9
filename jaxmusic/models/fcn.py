"""A fully convolutional mel-spectrogram CNN: the "VGGish" of the limited-data paper.

Log-mel [time, mel] -> input normalisation -> blocks of Conv 3x3 (pad 1) + norm + ReLU +
max-pool (time_pool x freq_pool) -> the frequency axis left over is max-pooled away
("frames") -> global max (or mean) over time -> optionally Dense + norm + ReLU (the
embedding) -> dropout in training -> "pooled".

Default (`model.fcn`): the network Plachouras et al. 2025 call VGGish (3.7M parameters,
512-d, 128 mel bins, 3.75 s): their code trains Won et al. 2020's short-chunk CNN, i.e.
channels 128, 128, 256, 256, 256, 256, 512, 2x2 pools, global max pool, Dense(512) +
BN + ReLU + dropout 0.5. That is 3,661,698 encoder parameters here (3,687,348 with a
50-tag classifier, equal to the PyTorch model's count). Choi et al. 2016's FCN-5 (as
in Won et al.'s comparison, on 96 bins and 29.1 s) is
`channels=(64, 128, 128, 128, 64), freq_pools=(2, 2, 2, 3, 4), time_pools=(4, 4, 4, 5, 4),
embedding_dim=0`.

"pooled" is what the paper's classifier reads, dropout included when train=True (so a
linear head on it trains the paper's model; set dropout 0 for objectives that want the
clean embedding). "frames" is the last conv map, [B, T, channels[-1]].

`norm="layer"` replaces every BatchNorm by a per-example normalisation (input:
GroupNorm with one group over the whole spectrogram; conv maps and the embedding:
LayerNorm over channels at each position), so that an example's output never depends
on the rest of the batch; parameter counts are unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.models import frontend
from jaxmusic.models.frontend import LogMel

VGGISH_CHANNELS = (128, 128, 256, 256, 256, 256, 512)
NORMS = ("batch", "layer")
GLOBAL_POOLS = ("max", "mean")


def check_norm(norm: str) -> None:
    """Refuse a `norm` other than "batch" or "layer"."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got '{norm}'")


def make_norm(norm: str, train: bool, momentum: float, dtype: Any, *, whole_input: bool = False) -> nn.Module:
    """A normalisation over the last (channel) axis; call inside a compact method.

    "batch": BatchNorm (statistics over batch and positions). "layer": LayerNorm over the
    channels at each position, or, with `whole_input`, GroupNorm(1 group) over the whole
    example (the input spectrogram has a single channel, which LayerNorm would zero).
    """
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=momentum, dtype=dtype)
    if whole_input:
        return nn.GroupNorm(num_groups=1, dtype=dtype)
    return nn.LayerNorm(dtype=dtype)


class EmbeddingHead(nn.Module):
    """[B, C] -> Dense(dim) + norm + ReLU (skipped when dim is 0) -> dropout (train only)."""

    dim: int
    dropout: float
    norm: str = "batch"
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if self.dim:
            x = nn.Dense(self.dim, dtype=self.dtype)(x)
            x = nn.relu(make_norm(self.norm, train, self.bn_momentum, self.dtype)(x))
        return nn.Dropout(self.dropout, deterministic=not train)(x)


def spectrogram_input(logmel: LogMel, audio: jax.Array, train: bool, min_frames: int, what: str) -> jax.Array:
    """The log-mel [B, T, F, 1] of `audio`, refusing inputs shorter than `min_frames` frames."""
    if audio.ndim == 2 and logmel.frames(audio.shape[-1]) < min_frames:
        minimum = frontend.samples_for_frames(min_frames, logmel.n_fft, logmel.hop_length)
        raise ValueError(
            f"{what} needs at least {minimum} samples ({min_frames} frames), got shape {audio.shape}"
        )
    return logmel(audio, train)[..., None]


class FCN(nn.Module):
    """Log-mel CNN: audio [B, samples] -> {"pooled": [B, D], "frames": [B, T, channels[-1]]}."""

    logmel: LogMel = dataclasses.field(default_factory=LogMel)
    channels: Sequence[int] = VGGISH_CHANNELS
    freq_pools: Sequence[int] = (2,) * 7
    time_pools: Sequence[int] = (2,) * 7
    global_pool: str = "max"
    embedding_dim: int = 512  # 0: pooled is the globally pooled conv features
    dropout: float = 0.5
    norm: str = "batch"
    bn_momentum: float = 0.9  # PyTorch's default (0.1 update), which Won et al. train with
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool) -> dict[str, jax.Array]:
        check_norm(self.norm)
        if not len(self.channels) == len(self.freq_pools) == len(self.time_pools):
            raise ValueError("FCN: channels, freq_pools and time_pools must have the same length")
        if self.global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got '{self.global_pool}'")
        if self.logmel.n_mels < math.prod(self.freq_pools):
            raise ValueError(
                f"FCN: {self.logmel.n_mels} mel bins cannot take freq_pools {tuple(self.freq_pools)}"
            )
        x = spectrogram_input(self.logmel, audio, train, math.prod(self.time_pools), "FCN").astype(self.dtype)
        x = make_norm(self.norm, train, self.bn_momentum, self.dtype, whole_input=True)(x)
        for ch, fp, tp in zip(self.channels, self.freq_pools, self.time_pools, strict=True):
            x = nn.Conv(ch, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype)(x)
            x = nn.relu(make_norm(self.norm, train, self.bn_momentum, self.dtype)(x))
            x = nn.max_pool(x, (tp, fp), strides=(tp, fp))
        frames = jnp.max(x, axis=2)
        pooled = jnp.max(frames, axis=1) if self.global_pool == "max" else jnp.mean(frames, axis=1)
        head = EmbeddingHead(self.embedding_dim, self.dropout, self.norm, self.bn_momentum, self.dtype)
        pooled = head(pooled, train)
        return {"pooled": pooled.astype(jnp.float32), "frames": frames.astype(jnp.float32)}


def default_config() -> ml_collections.ConfigDict:
    """`model.fcn`: the limited-data paper's VGGish (use with `model.logmel` at 128 bins, 16 kHz)."""
    c = ml_collections.ConfigDict()
    c.channels = VGGISH_CHANNELS
    c.freq_pools = (2,) * 7
    c.time_pools = (2,) * 7
    c.global_pool = "max"
    c.embedding_dim = 512
    c.dropout = 0.5
    c.norm = "batch"  # or "layer": no batch statistics (exact gradient accumulation)
    return c


def from_config(model: ml_collections.ConfigDict, dtype: Any) -> FCN:
    """The FCN of `model.fcn` on the log-mel of `model.logmel`."""
    c = model.fcn
    check_norm(c.norm)
    return FCN(
        logmel=frontend.logmel_from_config(model),
        channels=tuple(c.channels),
        freq_pools=tuple(c.freq_pools),
        time_pools=tuple(c.time_pools),
        global_pool=c.global_pool,
        embedding_dim=int(c.embedding_dim),
        dropout=float(c.dropout),
        norm=c.norm,
        dtype=dtype,
    )


def input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, 1): enough samples for prod(time_pools) frames; any longer length works."""
    frames = math.prod(model.fcn.time_pools)
    return frontend.samples_for_frames(frames, model.logmel.n_fft, model.logmel.hop_length), 1
