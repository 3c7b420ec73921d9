"""`objective.name = "supervised"`: an encoder + classifier trained on one labelled task.

Multi-label tasks (tags) train with binary cross-entropy over sigmoid outputs, as the
supervised taggers of Won et al. 2020 and the limited-data paper; single-label tasks
(genre, key) with softmax cross-entropy. The task, its kind and its classes come from
the dataset's manifest, so the head's width is never configured by hand. Validation
reports the loss and the task's metric (macro ROC-AUC and PR-AUC, or accuracy).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxmusic import metrics as metric_fns
from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs
from jaxmusic.models.registry import build_encoder
from jaxmusic.objectives.base import FlaxObjective, Metrics, Variables


def default_config() -> ml_collections.ConfigDict:
    """`objective.supervised`: which task, and the classifier on the pooled embedding."""
    c = ml_collections.ConfigDict()
    c.task = ""  # a task of the dataset's manifest (single or multi)
    c.head_dims = ()  # hidden layers of the classifier; () is a linear head
    c.dropout = 0.0  # before every head layer, in training
    return c


class ClassifierModel(nn.Module):
    """Encoder -> [dropout -> Dense -> ReLU]* -> dropout -> Dense(outputs) on one view."""

    encoder: nn.Module
    outputs: int
    head_dims: tuple[int, ...] = ()
    dropout: float = 0.0

    @nn.compact
    def __call__(self, batch: dict[str, Any], train: bool) -> jax.Array:
        h = self.encoder(batch["audio"][:, 0], train=train)["pooled"]
        for d in self.head_dims:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
            h = nn.relu(nn.Dense(d)(h))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.outputs, name="head")(h).astype(jnp.float32)


def bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Binary cross-entropy, mean over tags and examples."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy with integer labels, mean over examples."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


@dataclasses.dataclass(frozen=True)
class SupervisedObjective(FlaxObjective):
    task: str = ""
    kind: str = "single"

    def _loss(self, logits: jax.Array, batch: dict[str, Any]) -> jax.Array:
        labels = batch["labels"][self.task]
        return bce(logits, labels) if self.kind == "multi" else cross_entropy(logits, labels)

    def loss(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, tuple[Variables, Metrics]]:
        """BCE or CE on the task's labels; returns (loss, (mutable, metrics))."""
        logits, mutable = self.apply_train(params, mutable, batch, rng)
        loss = self._loss(logits, batch)
        out = {"loss": loss}
        if self.kind == "single":
            out["accuracy"] = jnp.mean(jnp.argmax(logits, -1) == batch["labels"][self.task])
        return loss, (mutable, out)

    def evaluate(self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array) -> Metrics:
        """Loss, and each example's scores and labels for the task's metric."""
        logits = self.apply_eval(params, mutable, batch)
        scores = jax.nn.sigmoid(logits) if self.kind == "multi" else jax.nn.softmax(logits, -1)
        return {
            "loss": self._loss(logits, batch),
            "examples": {"scores": scores, "labels": batch["labels"][self.task]},
        }

    def summarize(self, outputs: dict[str, Any]) -> dict[str, float]:
        """Mean loss plus macro ROC-AUC / PR-AUC (multi) or accuracy (single)."""
        out = super().summarize(outputs)
        y, s = np.asarray(outputs["examples"]["labels"]), np.asarray(outputs["examples"]["scores"])
        fns = {"accuracy": metric_fns.accuracy}
        if self.kind == "multi":
            fns = {"roc_auc": metric_fns.macro_roc_auc, "pr_auc": metric_fns.macro_average_precision}
        for name, fn in fns.items():
            try:
                out[name] = fn(y, s)
            except ValueError:  # e.g. no tag with both values among the validation clips
                out[name] = float("nan")  # a monitoring figure: it never stops the run
        return out


def build(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> SupervisedObjective:
    """A classifier for `objective.supervised.task` of the dataset in `manifest`."""
    del workdir  # no assets
    c = config.objective.supervised
    tasks = manifest["tasks"]
    if c.task not in tasks:
        raise ConfigError(
            f"objective.supervised.task '{c.task}' is not a task of {manifest.get('name', 'the dataset')} "
            f"(its tasks: {', '.join(tasks) or 'none'})"
        )
    task = tasks[c.task]
    if task["kind"] not in ("single", "multi"):
        raise ConfigError(
            f"objective.supervised.task '{c.task}' is a {task['kind']} task: supervised training takes "
            "single- or multi-label tasks"
        )
    if not 0 <= c.dropout < 1:
        raise ConfigError(f"objective.supervised.dropout must be in [0, 1), got {c.dropout}")
    model = ClassifierModel(
        encoder=build_encoder(config.model),
        outputs=len(task["classes"]),
        head_dims=tuple(c.head_dims),
        dropout=float(c.dropout),
    )
    inputs = Inputs(crop="independent", num_views=1, tasks=(c.task,))
    return SupervisedObjective(model=model, inputs=inputs, task=c.task, kind=task["kind"])
