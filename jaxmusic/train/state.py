"""The train state, a plain dict {params, mutable, opt_state, step}, and how it is made.

`mutable` holds every mutable collection of the objective's variables (BatchNorm
statistics today), so the trainer never names one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmusic.objectives.base import Objective


def state_factory(
    objective: Objective, tx: optax.GradientTransformation, batch_spec: dict[str, Any]
) -> Callable[[jax.Array], dict[str, Any]]:
    """`init(key) -> state` for an objective, its optimizer and the batch's element spec."""

    def init(key: jax.Array) -> dict[str, Any]:
        variables = dict(objective.init(key, batch_spec))
        params = variables.pop("params")
        return {
            "params": params,
            "mutable": variables,
            "opt_state": tx.init(params),
            "step": jnp.zeros((), jnp.int32),
        }

    return init
