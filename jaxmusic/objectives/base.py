"""The objective protocol: the only thing the trainer knows about what it optimises.

An objective is built from `(config, manifest)` by `objectives/registry.py` and offers

- `inputs`: the `data.pipeline.Inputs` it needs (how to crop, which tasks' labels);
- `init(rng, batch_spec) -> variables`, from the batch's shapes (an element spec);
- `loss(params, mutable, batch, rng) -> (loss, (mutable, metrics))`, where `mutable`
  holds every mutable collection (batch statistics today; an EMA teacher or a queue
  tomorrow) and `batch` is the preprocessed batch dict;
- `evaluate(params, mutable, batch, rng) -> outputs` without updates: per-batch
  scalars, plus per-example arrays under `examples`; and `summarize(outputs)` on the
  host, given the scalars stacked over batches and the examples concatenated, for
  validation during training;
- `encoder_variables(variables)`: the encoder's own variables, what embedding needs.

Every objective here is a Flax model whose encoder submodule is named `encoder`, so
its variables sit at `params/encoder` and `<collection>/encoder` of the train state;
`train/checkpoint.restore_encoder` relies on that and on nothing else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic.data.pipeline import Inputs

ENCODER = "encoder"

Variables = dict[str, Any]
Metrics = dict[str, jax.Array]


class Objective(Protocol):
    inputs: Inputs
    # Whether the loss is a mean over independent examples, so that gradients of
    # micro-batches average to the whole batch's (a contrastive loss is not: its
    # negatives would shrink to one micro-batch).
    accumulable: bool

    def init(self, rng: jax.Array, batch_spec: dict[str, Any]) -> Variables: ...

    def loss(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, tuple[Variables, Metrics]]: ...

    def evaluate(self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array) -> Metrics: ...

    def summarize(self, outputs: dict[str, np.ndarray]) -> dict[str, float]: ...

    def encoder_variables(self, variables: Variables) -> Variables: ...


def encoder_variables(variables: Variables) -> Variables:
    """The `encoder` submodule's share of every collection."""
    return {col: tree[ENCODER] for col, tree in variables.items() if ENCODER in tree}


def example_batch(batch_spec: dict[str, Any]) -> dict[str, Any]:
    """Zeros shaped like one element of `batch_spec` with a batch axis of 1, with `audio`
    float as `preprocess` hands it to the model (token ids and labels keep their dtype)."""
    batch = jax.tree.map(lambda s: jnp.zeros((1, *s.shape), s.dtype), batch_spec)
    return {**batch, "audio": batch["audio"].astype(jnp.float32)}


@dataclasses.dataclass(frozen=True)
class FlaxObjective:
    """Shared machinery of objectives that are one Flax model `model(batch, train)`."""

    model: nn.Module
    inputs: Inputs
    accumulable: bool = True

    def init(self, rng: jax.Array, batch_spec: dict[str, Any]) -> Variables:
        """Variables of `model` for batches shaped like `batch_spec`."""
        return dict(self.model.init(rng, example_batch(batch_spec), train=False))

    def apply_train(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[Any, Variables]:
        """The model in training mode; returns its outputs and updated mutable collections."""
        dropout, specaugment = jax.random.split(rng)
        out, updates = self.model.apply(
            {"params": params, **mutable},
            batch,
            train=True,
            mutable=list(mutable),
            rngs={"dropout": dropout, "specaugment": specaugment},
        )
        return out, dict(updates)

    def apply_eval(self, params: Any, mutable: Variables, batch: dict[str, Any]) -> Any:
        """The model in inference mode (running statistics, no dropout)."""
        return self.model.apply({"params": params, **mutable}, batch, train=False)

    def summarize(self, outputs: dict[str, Any]) -> dict[str, float]:
        """Validation metrics: the mean over batches of each per-batch scalar."""
        return {k: float(np.mean(v)) for k, v in outputs.items() if k != "examples"}

    def encoder_variables(self, variables: Variables) -> Variables:
        """The encoder's variables (see the module docstring)."""
        return encoder_variables(variables)
