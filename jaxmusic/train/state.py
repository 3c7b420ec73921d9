"""The train state, a plain dict {params, batch_stats, opt_state, step}, and its optimizer.

Shared by the trainer (which creates it) and `embed` (which restores it from a
checkpoint into whatever devices it has).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxmusic.config import ConfigError
from jaxmusic.objectives.build import build_objective
from jaxmusic.objectives.contrastive import ContrastiveObjective


def make_optimizer(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam (CLMR) or AdamW, with an optional linear warm-up."""
    lr: float | optax.Schedule = cfg.learning_rate
    if cfg.warmup_steps:
        lr = optax.linear_schedule(0.0, cfg.learning_rate, cfg.warmup_steps)
    if cfg.name == "adam":
        return optax.adam(lr)
    if cfg.name == "adamw":
        return optax.adamw(lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer.name '{cfg.name}' (known: adam, adamw)")


def state_factory(
    config: ml_collections.ConfigDict,
) -> tuple[ContrastiveObjective, optax.GradientTransformation, Callable[[jax.Array], dict[str, Any]]]:
    """The objective, the optimizer and `init(key) -> state` for a config."""
    objective = build_objective(config)
    tx = make_optimizer(config.optimizer)
    example = jnp.zeros((1, config.data.num_views, config.data.crop_samples), jnp.float32)

    def init(key: jax.Array) -> dict[str, Any]:
        variables = objective.init(key, example)
        return {
            "params": variables["params"],
            "batch_stats": variables.get("batch_stats", {}),
            "opt_state": tx.init(variables["params"]),
            "step": jnp.zeros((), jnp.int32),
        }

    return objective, tx, init


def abstract_state(config: ml_collections.ConfigDict, sharding: jax.sharding.Sharding) -> dict[str, Any]:
    """Shapes and dtypes of the state, every leaf placed with `sharding` (a restore target)."""
    _, _, init = state_factory(config)
    shapes = jax.eval_shape(init, jax.random.PRNGKey(0))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)
