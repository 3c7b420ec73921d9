"""Joining a multi-process JAX runtime (`jax.distributed`), before any device is used.

On Cloud TPU pods and SLURM/GPU clusters `jax.distributed.initialize()` finds the
coordinator itself (`--distributed`); elsewhere, e.g. several processes on one machine,
pass the coordinator address, the process count and this process's id.
"""

from __future__ import annotations

import jax

from jaxmusic.config import ConfigError


def initialize(
    auto: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join the runtime when asked to; a single-process run passes nothing."""
    explicit = (coordinator, num_processes, process_id)
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ConfigError("--coordinator, --num-processes and --process-id go together")
        if not 0 <= process_id < num_processes:
            raise ConfigError(f"--process-id must be in [0, {num_processes}), got {process_id}")
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    elif auto:
        try:
            jax.distributed.initialize()
        except ValueError as e:
            raise ConfigError(
                f"--distributed could not find a cluster ({e}): pass --coordinator, "
                "--num-processes and --process-id"
            ) from None
