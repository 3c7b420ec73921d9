"""SimCLR's contrastive objective (NT-Xent) over the global batch, as CLMR trains it.

Under `jax.jit` over a batch-sharded input the similarity matrix below spans the whole
global batch: every example's negatives come from all devices and all processes, with
no explicit gather in this code (XLA inserts it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.models.heads import Projector


def nt_xent(z_a: jax.Array, z_b: jax.Array, temperature: float) -> jax.Array:
    """Normalised-temperature cross-entropy of SimCLR for pairs (z_a[i], z_b[i]).

    Each of the 2B embeddings has its pair as the positive and the other 2B - 2 as
    negatives; the loss is the mean over all 2B anchors.
    """
    z = jnp.concatenate([z_a, z_b], axis=0).astype(jnp.float32)
    z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    n = z.shape[0]
    logits = (z @ z.T) / temperature
    logits = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, logits)
    positives = (jnp.arange(n) + n // 2) % n
    log_prob = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_prob, positives[:, None], axis=-1))


class SimCLRModel(nn.Module):
    """Encoder + projector applied to every view: [batch, views, samples] -> [batch, views, d]."""

    encoder: nn.Module
    projector_dims: tuple[int, ...] = (512, 64)

    @nn.compact
    def __call__(self, views: jax.Array, train: bool) -> jax.Array:
        b, v, t = views.shape
        h = self.encoder(views.reshape(b * v, t), train=train)
        z = Projector(self.projector_dims, name="projector")(h)
        return z.reshape(b, v, -1)


@dataclasses.dataclass(frozen=True)
class ContrastiveObjective:
    """NT-Xent between the first two views of each clip."""

    encoder: nn.Module
    projector_dims: tuple[int, ...]
    temperature: float

    @property
    def model(self) -> SimCLRModel:
        return SimCLRModel(encoder=self.encoder, projector_dims=self.projector_dims, name=None)

    def init(self, rng: jax.Array, views: jax.Array) -> dict[str, Any]:
        """Variables ({'params', 'batch_stats'}) for views shaped like `views`."""
        return dict(self.model.init(rng, views, train=False))

    def loss(
        self, params: Any, batch_stats: Any, views: jax.Array, rng: jax.Array
    ) -> tuple[jax.Array, tuple[Any, dict[str, jax.Array]]]:
        """Training loss; returns (loss, (new batch_stats, metrics))."""
        del rng  # SampleCNN has no dropout; the augmentation key is drawn by the caller
        if views.shape[1] < 2:
            raise ValueError("the contrastive objective needs at least two views per clip")
        z, updates = self.model.apply(
            {"params": params, "batch_stats": batch_stats}, views, train=True, mutable=["batch_stats"]
        )
        loss = nt_xent(z[:, 0], z[:, 1], self.temperature)
        return loss, (updates["batch_stats"], {"loss": loss})
