"""The pre-norm Transformer every tower shares (spectrogram patches, caption tokens, decoders).

Block (ViT / BERT-pre-LN): x + MHA(LayerNorm(x)), then x + MLP(LayerNorm(x)) with a GELU
MLP, and a final LayerNorm after the last block. Attention is
`jax.nn.dot_product_attention` (q, k, v [B, T, N, H]) with a key padding mask broadcast to
[B, N, T, S]: a padded key gets no weight, so the outputs at valid positions do not depend
on what padded tokens hold. Outputs at padded positions are computed but meaningless;
`masked_mean` pools only valid ones.

Positions are integer ids [B, T] (default `arange(T)`), so a caller that passes a subset
of tokens (the MAE's visible patches) keeps each token's own position:
- "learned": a table of `max_len` rows, added to x at the input;
- "rotary": q and k rotated by angles proportional to the position (RoFormer), so that
  attention scores depend only on the offset between two tokens and any length works.

Dropout (after the position embedding, in the MLP and on each residual branch) and
attention dropout draw on the "dropout" rng, and only when `train`. The fused attention op
has no dropout, so when attention dropout is active the softmax is computed explicitly.

Parameters are float32; `dtype` is the compute dtype (bfloat16 allowed). LayerNorm
statistics and the softmax stay in float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

POSITIONS = ("learned", "rotary")
ROTARY_BASE = 10000.0  # RoFormer's wavelength base

_dense_init = nn.initializers.xavier_uniform()  # ViT's initialisation for every projection
_position_init = nn.initializers.normal(stddev=0.02)


def default_config() -> ml_collections.ConfigDict:
    """A small Transformer: 4 blocks of width 256 (4 heads, MLP 1024), learned positions."""
    c = ml_collections.ConfigDict()
    c.width = 256
    c.depth = 4
    c.heads = 4
    c.mlp_dim = 1024
    c.dropout = 0.0
    c.attention_dropout = 0.0
    c.positions = "learned"  # or "rotary"
    c.max_len = 512  # rows of the learned table (unused by rotary)
    return c


def check_shape(width: int, heads: int, positions: str) -> None:
    """Refuse a width that the heads do not divide, an unknown `positions`, or odd rotary heads."""
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got '{positions}'")
    if heads < 1 or width % heads:
        raise ValueError(f"width {width} is not a multiple of heads {heads}")
    if positions == "rotary" and (width // heads) % 2:
        raise ValueError(f"rotary positions need an even head width, got {width} / {heads} heads")


def masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean of x [B, T, D] over the valid (mask True) positions of each row: float32 [B, D].

    A row with no valid position gives zeros rather than NaN.
    """
    x = x.astype(jnp.float32)
    if mask is None:
        return jnp.mean(x, axis=1)
    m = mask.astype(jnp.float32)[..., None]
    return jnp.sum(x * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)


def apply_rotary(x: jax.Array, positions: jax.Array) -> jax.Array:
    """Rotate x [B, T, N, H] (H even) by the rotary angles of positions int[B, T].

    Channel pairs (i, i + H/2) turn by position * ROTARY_BASE^(-2i/H), so the dot product of a
    rotated query and key depends only on the difference of their positions.
    """
    half = x.shape[-1] // 2
    freqs = ROTARY_BASE ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[..., None, None] * freqs  # [B, T, 1, H/2]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


def attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None,
    *,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """Scaled dot-product attention, q [B, T, N, H], k and v [B, S, N, H] -> [B, T, N, H].

    `mask` bool[B, S] marks the keys that may be attended to. Without `dropout_rng` this is
    `jax.nn.dot_product_attention`; with it, the same softmax is computed explicitly so that
    its weights can be dropped out at `dropout_rate` (the fused op has no dropout).
    """
    mask4 = None if mask is None else mask.astype(bool)[:, None, None, :]
    if dropout_rng is None:
        return jax.nn.dot_product_attention(q, k, v, mask=mask4)
    scale = q.shape[-1] ** -0.5
    logits = jnp.einsum("btnh,bsnh->bnts", q, k, preferred_element_type=jnp.float32) * scale
    if mask4 is not None:
        # The fused op's own masking value: a row with no valid key becomes uniform, not NaN.
        logits = jnp.where(mask4, logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1)
    if dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - dropout_rate), 0.0)
    return jnp.einsum("bnts,bsnh->btnh", weights.astype(v.dtype), v)


class SelfAttention(nn.Module):
    """Multi-head self-attention over x [B, T, D] with a key padding mask, optionally rotary."""

    heads: int
    rotary: bool = False
    attention_dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, mask: jax.Array | None, positions: jax.Array, train: bool = False
    ) -> jax.Array:
        width = x.shape[-1]
        head_dim = width // self.heads

        def project(name: str) -> jax.Array:
            dense = nn.DenseGeneral(
                (self.heads, head_dim), dtype=self.dtype, kernel_init=_dense_init, name=name
            )
            return dense(x)

        q, k, v = project("query"), project("key"), project("value")
        if self.rotary:
            q, k = apply_rotary(q, positions), apply_rotary(k, positions)
        rng = None
        if train and self.attention_dropout > 0.0:
            rng = self.make_rng("dropout")
        y = attention(q, k, v, mask, dropout_rate=self.attention_dropout, dropout_rng=rng)
        out = nn.DenseGeneral(width, axis=(-2, -1), dtype=self.dtype, kernel_init=_dense_init, name="out")
        return out(y)


class Block(nn.Module):
    """One pre-norm block: x + Dropout(MHA(LN(x))), then x + Dropout(MLP(LN(x)))."""

    heads: int
    mlp_dim: int
    dropout: float = 0.0
    attention_dropout: float = 0.0
    rotary: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, mask: jax.Array | None, positions: jax.Array, train: bool = False
    ) -> jax.Array:
        drop = nn.Dropout(self.dropout, deterministic=not train)
        y = nn.LayerNorm(dtype=self.dtype, name="attention_norm")(x)
        y = SelfAttention(self.heads, self.rotary, self.attention_dropout, self.dtype, name="attention")(
            y, mask, positions, train
        )
        x = x + drop(y)
        y = nn.LayerNorm(dtype=self.dtype, name="mlp_norm")(x)
        y = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=_dense_init, name="mlp_in")(y)
        y = drop(nn.gelu(y))
        y = nn.Dense(x.shape[-1], dtype=self.dtype, kernel_init=_dense_init, name="mlp_out")(y)
        return x + drop(y)


class Transformer(nn.Module):
    """Pre-norm Transformer encoder: x [B, T, width] -> [B, T, width] in `dtype`.

    `mask` bool[B, T] (True = a real token; None = all real) hides padded keys; `positions`
    int[B, T] (default arange(T)) index the learned table or set the rotary angles. With
    learned positions, ids must lie in [0, max_len): ids outside read NaN (loud, not clamped).
    """

    depth: int
    width: int
    heads: int
    mlp_dim: int
    dropout: float = 0.0
    attention_dropout: float = 0.0
    positions: str = "learned"
    max_len: int = 512
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        check_shape(self.width, self.heads, self.positions)
        if x.ndim != 3 or x.shape[-1] != self.width:
            raise ValueError(f"Transformer of width {self.width} takes [B, T, {self.width}], got {x.shape}")
        batch, length, _ = x.shape
        if positions is None:
            if self.positions == "learned" and length > self.max_len:
                raise ValueError(f"{length} tokens exceed the learned position table ({self.max_len} rows)")
            positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
        x = x.astype(self.dtype)
        if self.positions == "learned":
            table = self.param("pos_embed", _position_init, (self.max_len, self.width), jnp.float32)
            x = x + jnp.take(table, positions, axis=0, mode="fill").astype(self.dtype)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        for i in range(self.depth):
            block = Block(
                self.heads,
                self.mlp_dim,
                self.dropout,
                self.attention_dropout,
                self.positions == "rotary",
                self.dtype,
                name=f"block{i}",
            )
            x = block(x, mask, positions, train)
        return nn.LayerNorm(dtype=self.dtype, name="final_norm")(x)


def from_config(c: ml_collections.ConfigDict, dtype: Any = jnp.float32) -> Transformer:
    """The Transformer of a section shaped like `default_config()`."""
    check_shape(int(c.width), int(c.heads), c.positions)
    return Transformer(
        depth=int(c.depth),
        width=int(c.width),
        heads=int(c.heads),
        mlp_dim=int(c.mlp_dim),
        dropout=float(c.dropout),
        attention_dropout=float(c.attention_dropout),
        positions=c.positions,
        max_len=int(c.max_len),
        dtype=dtype,
    )
