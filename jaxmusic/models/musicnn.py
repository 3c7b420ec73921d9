"""MusiCNN (Pons et al. 2018; Pons & Serra's musicnn code): a musically motivated CNN.

Front-end on the BatchNorm-ed log-mel [time, mel]: timbral filters spanning a fraction
of the mel bins (int(0.4 * n_mels) and int(0.7 * n_mels) high, 7 frames wide, time
padded by 3) and temporal filters one bin high and 128, 64 and 32 frames wide ("same"
padding), each Conv + ReLU + BN then max-pooled over frequency; int(1.6 * 128) = 204
timbral and int(1.6 * 32) = 51 temporal filters each, concatenated: 561 channels.
Mid-end: three 1-D convolutions over time (width 7, Conv + ReLU + BN), the second and
third with residual connections; the front-end output and the three mid-end outputs
are concatenated ("frames", 561 + 3 * midend_filters channels). Back-end: max and mean
over time, BN, dropout, Dense + ReLU + BN (the embedding), dropout in training:
"pooled". "frames" and "pooled" therefore have different widths.

Sizes. The original models count (encoder / with a 50-tag classifier): MTT_musicnn
(mid-end 64, dense 200) 777,109 / 787,159; MSD_musicnn_big (512, 500) 7,955,185 /
7,980,235. The limited-data paper (Plachouras et al. 2025) reports 12.0M for its
MusiCNN, although its public code is the 64 / 200 model; to match the reported size
the default here widens MSD_musicnn_big's mid-end to 684 filters (dense 500):
12,030,209 encoder parameters, 12,055,259 with the 50-tag classifier. Set
midend_filters=64, dense_units=200 for the original MTT model.

BatchNorm momentum 0.9 (PyTorch's 0.1 update; the paper's PyTorch port) and epsilon
1e-5; the TensorFlow original used 0.99 and 1e-3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.models import fcn, frontend
from jaxmusic.models.frontend import LogMel


class MusiCNN(nn.Module):
    """Log-mel MusiCNN: audio [B, samples] -> {"pooled": [B, dense_units], "frames": [B, T, C]}."""

    logmel: LogMel = dataclasses.field(default_factory=lambda: LogMel(n_mels=96))
    filter_factor: float = 1.6
    timbral_heights: Sequence[float] = (0.4, 0.7)  # fractions of the mel bins
    timbral_width: int = 7  # frames
    temporal_widths: Sequence[int] = (128, 64, 32)  # frames
    midend_filters: int = 684
    midend_layers: int = 3
    midend_width: int = 7
    dense_units: int = 500
    dropout: float = 0.5
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    def _bn(self, train: bool) -> nn.Module:
        return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, dtype=self.dtype)

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool) -> dict[str, jax.Array]:
        mel = fcn.spectrogram_input(self.logmel, audio, train, 1, "MusiCNN").astype(self.dtype)
        x = self._bn(train)(mel)
        n_mels = x.shape[2]
        front = []
        for fraction in self.timbral_heights:
            height = max(1, int(fraction * n_mels))
            pad = ((self.timbral_width - 1) // 2, self.timbral_width // 2)
            y = nn.Conv(
                int(self.filter_factor * 128),
                (self.timbral_width, height),
                padding=(pad, (0, 0)),
                dtype=self.dtype,
            )(x)
            front.append(jnp.max(self._bn(train)(nn.relu(y)), axis=2))
        for width in self.temporal_widths:
            pad = ((width - 1) // 2, width // 2)  # TensorFlow's "same" for even widths too
            y = nn.Conv(int(self.filter_factor * 32), (width, 1), padding=(pad, (0, 0)), dtype=self.dtype)(x)
            front.append(jnp.max(self._bn(train)(nn.relu(y)), axis=2))
        h = jnp.concatenate(front, axis=-1)

        features = [h]
        pad = ((self.midend_width - 1) // 2, self.midend_width // 2)
        for i in range(self.midend_layers):
            y = nn.Conv(self.midend_filters, (self.midend_width,), padding=(pad,), dtype=self.dtype)(h)
            y = self._bn(train)(nn.relu(y))
            h = y if i == 0 else h + y  # the first layer adapts the width; the others are residual
            features.append(h)
        frames = jnp.concatenate(features, axis=-1)

        pooled = jnp.concatenate([jnp.max(frames, axis=1), jnp.mean(frames, axis=1)], axis=-1)
        pooled = nn.Dropout(self.dropout, deterministic=not train)(self._bn(train)(pooled))
        pooled = self._bn(train)(nn.relu(nn.Dense(self.dense_units, dtype=self.dtype)(pooled)))
        pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
        return {"pooled": pooled.astype(jnp.float32), "frames": frames.astype(jnp.float32)}


def default_config() -> ml_collections.ConfigDict:
    """`model.musicnn`: about 12M parameters, the limited-data paper's reported size.

    The papers' log-mel (set in `model.logmel` by the experiment config): 16 kHz,
    n_fft 512, hop 256, 96 mel bins (f_max 8 kHz), 3 s inputs (188 frames).
    """
    c = ml_collections.ConfigDict()
    c.filter_factor = 1.6
    c.timbral_heights = (0.4, 0.7)
    c.timbral_width = 7
    c.temporal_widths = (128, 64, 32)
    c.midend_filters = 684  # 64 in MTT_musicnn, 512 in MSD_musicnn_big
    c.midend_layers = 3
    c.midend_width = 7
    c.dense_units = 500  # 200 in MTT_musicnn, 500 in MSD_musicnn_big
    c.dropout = 0.5
    return c


def from_config(model: ml_collections.ConfigDict, dtype: Any) -> MusiCNN:
    """The MusiCNN of `model.musicnn` on the log-mel of `model.logmel`."""
    c = model.musicnn
    return MusiCNN(
        logmel=frontend.logmel_from_config(model),
        filter_factor=float(c.filter_factor),
        timbral_heights=tuple(float(f) for f in c.timbral_heights),
        timbral_width=int(c.timbral_width),
        temporal_widths=tuple(int(w) for w in c.temporal_widths),
        midend_filters=int(c.midend_filters),
        midend_layers=int(c.midend_layers),
        midend_width=int(c.midend_width),
        dense_units=int(c.dense_units),
        dropout=float(c.dropout),
        dtype=dtype,
    )


def input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, 1): every convolution is padded to keep the length, so one frame is enough."""
    return frontend.samples_for_frames(1, model.logmel.n_fft, model.logmel.hop_length), 1
