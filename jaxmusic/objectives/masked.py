"""`objective.name = "mae"`: masked spectrogram modelling (a masked autoencoder, MAE).

The spectrogram transformer cuts each clip's log-mel into patches; a random
`mask_ratio` of them is hidden, the encoder sees only the visible ones (with their
positions), and a light transformer decoder, given the encoder's tokens at the visible
positions and a learned mask token everywhere else, reconstructs every patch. The loss
is the mean squared error on the hidden patches only, against patches normalised to
zero mean and unit variance each (MAE's normalised-pixel target). Only the encoder is
kept: `embed` and the probes see it run on all patches, no masking.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs
from jaxmusic.models.registry import COMPUTE_DTYPES, build_encoder
from jaxmusic.models.transformer import Transformer
from jaxmusic.objectives.base import FlaxObjective, Metrics, Variables


def default_config() -> ml_collections.ConfigDict:
    """`objective.mae`: mask ratio, target normalisation and the light decoder."""
    c = ml_collections.ConfigDict()
    c.mask_ratio = 0.75
    c.normalize_targets = True
    c.decoder_width = 128
    c.decoder_depth = 2
    c.decoder_heads = 4
    c.decoder_mlp_dim = 512
    c.max_patches = 4096  # the decoder's position table
    return c


def random_split(rng: jax.Array, batch: int, n: int, keep: int) -> tuple[jax.Array, jax.Array]:
    """Per example, a uniformly random set of `keep` of `n` patch ids and the other ids:
    (visible [B, keep], hidden [B, n - keep]), each in increasing order."""
    order = jnp.argsort(jax.random.uniform(rng, (batch, n)), axis=1)
    return jnp.sort(order[:, :keep], axis=1), jnp.sort(order[:, keep:], axis=1)


def take(x: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows `ids` [B, k] of each example of x [B, n, ...]."""
    return jnp.take_along_axis(x, ids.reshape(*ids.shape, *([1] * (x.ndim - 2))), axis=1)


def normalized_patches(patches: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Each patch scaled to zero mean and unit variance over its values."""
    mean = patches.mean(-1, keepdims=True)
    var = patches.var(-1, keepdims=True)
    return (patches - mean) / jnp.sqrt(var + eps)


def reconstruction_loss(pred: jax.Array, target: jax.Array, hidden: jax.Array) -> jax.Array:
    """Mean squared error over the hidden patches `hidden` [B, n] (bool) only."""
    per_patch = jnp.mean((pred.astype(jnp.float32) - target) ** 2, axis=-1)
    return jnp.sum(per_patch * hidden) / jnp.maximum(jnp.sum(hidden), 1)


class MAEModel(nn.Module):
    """Spectrogram-transformer encoder on visible patches + light decoder on all of them."""

    encoder: nn.Module
    mask_ratio: float
    normalize_targets: bool
    decoder_width: int
    decoder_depth: int
    decoder_heads: int
    decoder_mlp_dim: int
    max_patches: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, batch: dict[str, Any], train: bool) -> dict[str, jax.Array]:
        """Predicted and target patches and the hidden ones; masks draw from the "masking" rng."""
        audio = batch["audio"][:, 0]
        patches, grid = self.encoder.patches(audio)
        b, n, p = patches.shape
        if n > self.max_patches:
            raise ValueError(f"{n} patches per clip, more than objective.mae.max_patches={self.max_patches}")
        keep = max(1, round(n * (1 - self.mask_ratio)))
        rng = self.make_rng("masking") if self.has_rng("masking") else jax.random.PRNGKey(0)
        visible, hidden_ids = random_split(rng, b, n, keep)
        tokens = self.encoder.encode(take(patches, visible), visible, grid, train=train)
        # The decoder sees every position: the encoder's tokens where visible, a mask token elsewhere.
        mask_token = self.param("mask_token", nn.initializers.normal(0.02), (self.decoder_width,))
        x = jnp.broadcast_to(mask_token.astype(tokens.dtype), (b, n, self.decoder_width))
        x = x.at[jnp.arange(b)[:, None], visible].set(nn.Dense(self.decoder_width, name="decoder_in")(tokens))
        x = Transformer(
            depth=self.decoder_depth, width=self.decoder_width, heads=self.decoder_heads,
            mlp_dim=self.decoder_mlp_dim, positions="learned", max_len=self.max_patches, dtype=self.dtype,
            name="decoder",
        )(x, train=train)  # fmt: skip
        pred = nn.Dense(p, name="decoder_out")(x)
        target = normalized_patches(patches) if self.normalize_targets else patches
        hidden = jnp.zeros((b, n), bool).at[jnp.arange(b)[:, None], hidden_ids].set(True)
        return {"pred": pred, "target": jax.lax.stop_gradient(target), "hidden": hidden}


@dataclasses.dataclass(frozen=True)
class MAEObjective(FlaxObjective):
    """Reconstruction of the hidden patches."""

    def _metrics(self, out: dict[str, jax.Array]) -> Metrics:
        loss = reconstruction_loss(out["pred"], out["target"], out["hidden"])
        return {"loss": loss, "hidden_fraction": jnp.mean(out["hidden"])}

    def loss(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, tuple[Variables, Metrics]]:
        """Training loss; returns (loss, (new mutable collections, metrics))."""
        dropout, masking = jax.random.split(rng)
        out, updates = self.model.apply(
            {"params": params, **mutable}, batch, train=True, mutable=list(mutable),
            rngs={"dropout": dropout, "masking": masking},
        )  # fmt: skip
        metrics = self._metrics(out)
        return metrics["loss"], (dict(updates), metrics)

    def evaluate(self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array) -> Metrics:
        """The reconstruction loss with the same masks at every evaluation."""
        out = self.model.apply({"params": params, **mutable}, batch, train=False, rngs={"masking": rng})
        return self._metrics(out)


def build(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> MAEObjective:
    """The masked autoencoder around the config's encoder, which must be a spectrogram transformer."""
    del manifest, workdir
    c = config.objective.mae
    if config.model.name != "spectrogram_transformer":
        raise ConfigError(
            f"objective.name=mae masks transformer patches: set --config.model.name=spectrogram_transformer "
            f"(got {config.model.name})"
        )
    if not 0 < c.mask_ratio < 1:
        raise ConfigError(f"objective.mae.mask_ratio must be in (0, 1), got {c.mask_ratio}")
    if c.decoder_width % c.decoder_heads:
        raise ConfigError("objective.mae.decoder_width must be a multiple of decoder_heads")
    model = MAEModel(
        encoder=build_encoder(config.model),
        mask_ratio=float(c.mask_ratio), normalize_targets=bool(c.normalize_targets),
        decoder_width=int(c.decoder_width), decoder_depth=int(c.decoder_depth),
        decoder_heads=int(c.decoder_heads), decoder_mlp_dim=int(c.decoder_mlp_dim),
        max_patches=int(c.max_patches), dtype=COMPUTE_DTYPES.get(config.model.compute_dtype, jnp.float32),
    )  # fmt: skip
    return MAEObjective(model=model, inputs=Inputs(crop="independent", num_views=1))
