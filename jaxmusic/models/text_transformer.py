"""Caption encoder: token embedding -> the shared pre-norm Transformer -> masked mean.

Built with `setup()` so that a parent (the MuLaP or dual-encoder objective) can call
`embed`, `__call__` and `logits` separately. `logits` reads the token embedding
transposed (tied input and output weights, as BERT's masked-language-model head) plus a
per-token bias, so MLM adds only `vocab_size` parameters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.models.transformer import Transformer, check_shape, masked_mean


def default_config() -> ml_collections.ConfigDict:
    """A small caption encoder: 4 blocks of width 256 (MusCALL's text tower has 4 blocks)."""
    c = ml_collections.ConfigDict()
    c.width = 256
    c.depth = 4
    c.heads = 4
    c.mlp_dim = 1024
    c.dropout = 0.1
    c.positions = "learned"  # or "rotary"
    c.max_len = 128  # learned positions: the longest caption in tokens
    return c


class TextTransformer(nn.Module):
    """Token ids [B, L] -> {"pooled": [B, width], "tokens": [B, L, width]} (float32)."""

    vocab_size: int
    width: int = 256
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 1024
    dropout: float = 0.1
    positions: str = "learned"
    max_len: int = 128
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    def setup(self) -> None:
        self.token_embed = nn.Embed(
            self.vocab_size, self.width, dtype=self.dtype, embedding_init=nn.initializers.normal(0.02)
        )
        self.logits_bias = self.param("logits_bias", nn.initializers.zeros, (self.vocab_size,))
        self.transformer = Transformer(
            depth=self.depth,
            width=self.width,
            heads=self.heads,
            mlp_dim=self.mlp_dim,
            dropout=self.dropout,
            positions=self.positions,
            max_len=self.max_len,
            dtype=self.dtype,
        )

    def embed(self, ids: jax.Array) -> jax.Array:
        """Token embeddings [B, L, width] of ids int[B, L] (no positions), in the compute dtype."""
        return self.token_embed(ids)

    def __call__(
        self, ids: jax.Array, mask: jax.Array | None = None, train: bool = False
    ) -> dict[str, jax.Array]:
        """Encode ids int[B, L] with mask bool[B, L] (True = real token; padded ones are ignored)."""
        tokens = self.transformer(self.embed(ids), mask, train=train)
        return {"pooled": masked_mean(tokens, mask), "tokens": tokens.astype(jnp.float32)}

    def logits(self, h: jax.Array) -> jax.Array:
        """Vocabulary logits float32[..., vocab_size] of hidden states h [..., width] (tied weights)."""
        return self.token_embed.attend(h.astype(self.dtype)).astype(jnp.float32) + self.logits_bias


def from_config(c: ml_collections.ConfigDict, vocab_size: int, dtype: Any = jnp.float32) -> TextTransformer:
    """The TextTransformer of a section shaped like `default_config()`, over `vocab_size` tokens."""
    check_shape(int(c.width), int(c.heads), c.positions)
    return TextTransformer(
        vocab_size=int(vocab_size),
        width=int(c.width),
        depth=int(c.depth),
        heads=int(c.heads),
        mlp_dim=int(c.mlp_dim),
        dropout=float(c.dropout),
        positions=c.positions,
        max_len=int(c.max_len),
        dtype=dtype,
    )
