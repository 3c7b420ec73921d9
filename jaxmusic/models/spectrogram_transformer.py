"""AST-style spectrogram transformer: log-mel patches -> the shared pre-norm Transformer.

audio -> `model.logmel` -> standardised per example (zero mean, unit variance over the
whole spectrogram) -> (patch_freq x patch_time) patches at (stride_freq, stride_time) ->
Dense patch embedding + position -> Transformer -> tokens.

The patch grid is (F, T): F = (n_mels - patch_freq) // stride_freq + 1 frequency rows
(row 0 = lowest band) and T = (frames - patch_time) // stride_time + 1 time columns;
frames a stride does not reach are dropped. Patch n sits at row n // T, column n % T, and
holds its bins flattened frequency-major (P = patch_freq * patch_time).

Positions are factorised: a learned table of F frequency-row embeddings (`freq_embed`,
added here: frequency is absolute, a band does not shift) and the time column, passed as
the Transformer's position id. With `positions="learned"` that is a second learned table
of `max_time_patches` rows (so T is at most `max_time_patches`); with "rotary" the time
column rotates queries and keys (attention depends on the time offset only, any clip
length works). Either way the input embedding of patch n depends only on its values and
its id, so `encode` takes any subset of patches (the MAE passes only the visible ones).

Outputs: "pooled" = mean over all patches; "frames" = mean over the frequency rows of each
time column, [B, T, width]. Float32, whatever the compute dtype.

Paper scales (set by config files; the default is a small model):
- AST ViT-Base (Gong et al. 2021) as in the limited-data paper: width 768, depth 12,
  heads 12, mlp 3072, 16x16 patches at stride 10, 128 mel, 5.12 s at 16 kHz, hop 160
  (512 frames: a 12 x 50 grid), max_time_patches 50: 85,300,992 parameters.
- The limited-data paper's masked-autoencoder transformer (7.2M with its decoder): width
  256, depth 8, heads 4, mlp 1024, 16x16 patches at stride 16 on 96 mel, 4.85 s at 16 kHz,
  hop 160 (486 frames: a 6 x 30 grid, the last 6 frames unused), max_time_patches 30:
  6,393,600 encoder parameters; a decoder of width 128, depth 4, heads 4, mlp 512 (with
  its 180-row position table, input and output projections and mask token) adds 882,432:
  7,276,032 in all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmusic.models import frontend
from jaxmusic.models.frontend import LogMel
from jaxmusic.models.transformer import Transformer, check_shape

STANDARDISE_EPS = 1e-5  # keeps a constant (silent) spectrogram at zero instead of NaN


def grid_size(length: int, patch: int, stride: int) -> int:
    """Patches of `patch` at `stride` along an axis of `length` (0 when it is shorter than a patch)."""
    return 0 if length < patch else (length - patch) // stride + 1


def _check(c: ml_collections.ConfigDict, n_mels: int) -> None:
    check_shape(int(c.width), int(c.heads), c.positions)
    if min(c.patch_freq, c.patch_time, c.stride_freq, c.stride_time) < 1:
        raise ValueError("model.spectrogram_transformer: patch sizes and strides must be at least 1")
    if n_mels < c.patch_freq:
        raise ValueError(f"model.spectrogram_transformer.patch_freq={c.patch_freq} exceeds {n_mels} mel bins")


class SpectrogramTransformer(nn.Module):
    """Log-mel patch transformer: audio [B, samples] -> {"pooled": [B, width], "frames": [B, T, width]}."""

    logmel: LogMel = dataclasses.field(default_factory=LogMel)
    patch_freq: int = 16
    patch_time: int = 16
    stride_freq: int = 16
    stride_time: int = 16
    width: int = 192
    depth: int = 6
    heads: int = 3
    mlp_dim: int = 768
    dropout: float = 0.0
    attention_dropout: float = 0.0
    positions: str = "learned"
    max_time_patches: int = 128
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    def setup(self) -> None:
        self.rows = grid_size(self.logmel.n_mels, self.patch_freq, self.stride_freq)
        if self.rows < 1:
            raise ValueError(f"patch_freq={self.patch_freq} exceeds {self.logmel.n_mels} mel bins")
        self.patch_embed = nn.Dense(
            self.width, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform()
        )
        self.freq_embed = self.param("freq_embed", nn.initializers.normal(0.02), (self.rows, self.width))
        self.transformer = Transformer(
            depth=self.depth,
            width=self.width,
            heads=self.heads,
            mlp_dim=self.mlp_dim,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            positions=self.positions,
            max_len=self.max_time_patches,
            dtype=self.dtype,
        )

    def patches(self, audio: jax.Array, train: bool = False) -> tuple[jax.Array, tuple[int, int]]:
        """(patches float32[B, N, P], grid (F, T)) of audio [B, samples]; N = F * T.

        `train` only turns on the log-mel frontend's SpecAugment masking, if configured.
        """
        if audio.ndim != 2 or self.logmel.frames(audio.shape[-1]) < self.patch_time:
            minimum = frontend.samples_for_frames(self.patch_time, self.logmel.n_fft, self.logmel.hop_length)
            raise ValueError(
                f"SpectrogramTransformer takes audio [batch, samples >= {minimum}] "
                f"({self.patch_time} frames), got shape {audio.shape}"
            )
        mel = self.logmel(audio, train)  # [B, frames, n_mels]
        mean = jnp.mean(mel, axis=(1, 2), keepdims=True)
        std = jnp.std(mel, axis=(1, 2), keepdims=True)
        mel = (mel - mean) / (std + STANDARDISE_EPS)
        cols = grid_size(mel.shape[1], self.patch_time, self.stride_time)
        # Static gather indices (exact for any stride, unlike a conv-based patch extractor,
        # whose matmul the GPU would run at reduced precision): [F, T, patch_freq, patch_time].
        f_idx = np.arange(self.rows)[:, None] * self.stride_freq + np.arange(self.patch_freq)
        t_idx = np.arange(cols)[:, None] * self.stride_time + np.arange(self.patch_time)
        p = mel[:, t_idx[None, :, None, :], f_idx[:, None, :, None]]  # [B, F, T, pf, pt]
        batch = audio.shape[0]
        return p.reshape(batch, self.rows * cols, self.patch_freq * self.patch_time), (self.rows, cols)

    def encode(
        self, patches: jax.Array, ids: jax.Array, grid: tuple[int, int], train: bool = False
    ) -> jax.Array:
        """Tokens float32[B, n, width] of patches [B, n, P] at grid positions ids int[B, n].

        Each patch is embedded from its own values and id only (Dense + frequency row
        embedding, and the time column as the Transformer's position), then all n attend
        to each other.
        """
        rows, cols = grid
        if rows != self.rows:
            raise ValueError(f"grid has {rows} frequency rows, this encoder has {self.rows}")
        if self.positions == "learned" and cols > self.max_time_patches:
            raise ValueError(
                f"{cols} time patches exceed max_time_patches={self.max_time_patches} "
                "(raise it, use a shorter window, or use rotary positions)"
            )
        x = self.patch_embed(patches.astype(self.dtype))
        x = x + jnp.take(self.freq_embed, ids // cols, axis=0).astype(self.dtype)
        return self.transformer(x, positions=ids % cols, train=train).astype(jnp.float32)

    def __call__(self, audio: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        p, (rows, cols) = self.patches(audio, train)
        batch, n, _ = p.shape
        ids = jnp.broadcast_to(jnp.arange(n), (batch, n))
        tokens = self.encode(p, ids, (rows, cols), train)
        frames = jnp.mean(tokens.reshape(batch, rows, cols, self.width), axis=1)
        return {"pooled": jnp.mean(tokens, axis=1), "frames": frames}


def default_config() -> ml_collections.ConfigDict:
    """`model.spectrogram_transformer`: a small ViT-Tiny-width model (2.7M), 16x16 patches."""
    c = ml_collections.ConfigDict()
    c.patch_freq = 16
    c.patch_time = 16
    c.stride_freq = 16
    c.stride_time = 16
    c.width = 192
    c.depth = 6
    c.heads = 3
    c.mlp_dim = 768
    c.dropout = 0.0
    c.attention_dropout = 0.0
    c.positions = "learned"  # or "rotary" (time columns; any length)
    c.max_time_patches = 128  # learned positions only: the longest window in time patches
    return c


def from_config(model: ml_collections.ConfigDict, dtype: Any) -> SpectrogramTransformer:
    """The SpectrogramTransformer of `model.spectrogram_transformer` on `model.logmel`."""
    c = model.spectrogram_transformer
    _check(c, int(model.logmel.n_mels))
    return SpectrogramTransformer(
        logmel=frontend.logmel_from_config(model),
        patch_freq=int(c.patch_freq),
        patch_time=int(c.patch_time),
        stride_freq=int(c.stride_freq),
        stride_time=int(c.stride_time),
        width=int(c.width),
        depth=int(c.depth),
        heads=int(c.heads),
        mlp_dim=int(c.mlp_dim),
        dropout=float(c.dropout),
        attention_dropout=float(c.attention_dropout),
        positions=c.positions,
        max_time_patches=int(c.max_time_patches),
        dtype=dtype,
    )


def input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, 1): at least one time patch (patch_time frames); any longer length works."""
    c = model.spectrogram_transformer
    _check(c, int(model.logmel.n_mels))
    return frontend.samples_for_frames(int(c.patch_time), model.logmel.n_fft, model.logmel.hop_length), 1
