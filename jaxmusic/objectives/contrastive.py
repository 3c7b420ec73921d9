"""Contrastive objectives (NT-Xent over the global batch): SimCLR as CLMR trains it.

Under `jax.jit` over a batch-sharded input the similarity matrix below spans the whole
global batch: every example's negatives come from all devices and all processes, with
no explicit gather in this code (XLA inserts it). Which two windows form a positive
pair is the pipeline's choice (`Inputs`): CLMR takes two independent crops.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs
from jaxmusic.models.heads import Projector
from jaxmusic.models.registry import build_encoder
from jaxmusic.objectives.base import FlaxObjective, Metrics, Variables


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
    """Encoder + projector applied to every view: batch["audio"] [B, V, T] -> [B, V, d]."""

    encoder: nn.Module
    projector_dims: tuple[int, ...] = (512, 64)

    @nn.compact
    def __call__(self, batch: dict[str, Any], train: bool) -> jax.Array:
        views = batch["audio"]
        b, v, t = views.shape
        h = self.encoder(views.reshape(b * v, t), train=train)["pooled"]
        z = Projector(self.projector_dims, name="projector")(h)
        return z.reshape(b, v, -1)


@dataclasses.dataclass(frozen=True)
class ContrastiveObjective(FlaxObjective):
    """NT-Xent between the first two views of each clip."""

    temperature: float = 0.5

    def loss(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, tuple[Variables, Metrics]]:
        """Training loss; returns (loss, (new mutable collections, metrics))."""
        z, mutable = self.apply_train(params, mutable, batch, rng)
        loss = nt_xent(z[:, 0], z[:, 1], self.temperature)
        return loss, (mutable, {"loss": loss})

    def evaluate(self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array) -> Metrics:
        """The loss on a batch with running statistics and no updates."""
        z = self.apply_eval(params, mutable, batch)
        return {"loss": nt_xent(z[:, 0], z[:, 1], self.temperature)}


def build_contrastive(
    config: ml_collections.ConfigDict, section: str, inputs: Inputs
) -> ContrastiveObjective:
    """A contrastive objective configured by `objective.<section>` around the config's encoder."""
    c = config.objective[section]
    if not c.temperature > 0:
        raise ConfigError(f"objective.{section}.temperature must be > 0, got {c.temperature}")
    if not c.projector_dims or min(c.projector_dims) < 1:
        raise ConfigError(
            f"objective.{section}.projector_dims must be positive sizes, got {c.projector_dims}"
        )
    # A module passed as a field is named after it: the encoder's variables land under
    # ENCODER, as the protocol promises.
    model = SimCLRModel(encoder=build_encoder(config.model), projector_dims=tuple(c.projector_dims))
    # Negatives span the batch, so accumulating micro-batches would change the objective.
    return ContrastiveObjective(
        model=model, inputs=inputs, accumulable=False, temperature=float(c.temperature)
    )
