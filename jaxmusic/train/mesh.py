"""The device mesh and the shardings the trainer places data and state on."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmusic.config import ConfigError


def make_mesh(mesh_shape: tuple[int, ...]) -> Mesh:
    """A mesh with one 'data' axis over all (or the first N) devices.

    Auto axes: XLA inserts the collectives that BatchNorm statistics and the global
    similarity matrix need, so the step is written once for 1 or N devices.
    """
    devices = jax.devices()
    if len(mesh_shape) != 1:
        raise ConfigError(f"mesh_shape must have one entry (the 'data' axis), got {mesh_shape}")
    n = len(devices) if mesh_shape[0] == -1 else mesh_shape[0]
    if not 1 <= n <= len(devices):
        raise ConfigError(f"mesh_shape asks for {n} devices, {len(devices)} are available")
    return Mesh(np.asarray(devices[:n]), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over 'data'."""
    return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same value on every device."""
    return NamedSharding(mesh, PartitionSpec())


def check_batch(global_batch: int, mesh: Mesh) -> int:
    """This process's share of the global batch; refuses a batch that does not divide."""
    devices = mesh.devices.size
    processes = jax.process_count()
    if global_batch % devices:
        raise ConfigError(
            f"batch_size {global_batch} does not divide over {devices} devices: "
            f"use a multiple of {devices} (e.g. --config.batch_size={devices * max(1, global_batch // devices)})"
        )
    if global_batch % processes:
        raise ConfigError(f"batch_size {global_batch} does not divide over {processes} processes")
    return global_batch // processes
