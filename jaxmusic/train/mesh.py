"""The device mesh and the shardings the trainer places data and state on.

`config.mesh_shape` is `(D,)`, a mesh with one 'data' axis, or `(D, F)`, with a
second 'fsdp' axis. Every device of the mesh gets different examples (the batch is
split over both axes); along 'fsdp' the parameters and optimizer state are split too,
by `fsdp_spec`'s rule, so each device holds 1/F of every large array. The axes are
Auto: XLA inserts the all-gathers of sharded parameters, the reduce-scatters of their
gradients and the collectives that BatchNorm statistics and the global similarity
matrix need, so the step is written once for any mesh.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmusic.config import ConfigError

AXES = ("data", "fsdp")

# Arrays smaller than this many elements stay whole on every device: splitting a bias
# or a BatchNorm scale saves next to no memory and costs one more collective.
FSDP_MIN_SIZE = 2**12


def mesh_dims(mesh_shape: tuple[int, ...], device_count: int) -> tuple[int, ...]:
    """`mesh_shape` with its -1 (if any) resolved against `device_count`; one-line
    ConfigError for anything that is not one or two positive sizes fitting the devices."""
    shape = tuple(mesh_shape)
    if not 1 <= len(shape) <= len(AXES) or not all(type(d) is int for d in shape):
        raise ConfigError(f"mesh_shape must be (data,) or (data, fsdp) integers, got {shape}")
    if any(d == 0 or d < -1 for d in shape):
        raise ConfigError(
            f"mesh_shape entries must be positive, or -1 for the rest of the devices, got {shape}"
        )
    if shape.count(-1) > 1:
        raise ConfigError(f"mesh_shape may have one -1 (the rest of the devices), got {shape}")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if device_count % known:
            raise ConfigError(f"mesh_shape {shape}: {device_count} devices do not divide by {known}")
        shape = tuple(device_count // known if d == -1 else d for d in shape)
    if math.prod(shape) > device_count:
        raise ConfigError(
            f"mesh_shape {shape} asks for {math.prod(shape)} devices, {device_count} are available"
        )
    return shape


def make_mesh(mesh_shape: tuple[int, ...]) -> Mesh:
    """The mesh `config.mesh_shape` asks for: axes ('data',) or ('data', 'fsdp')."""
    devices = jax.devices()
    shape = mesh_dims(mesh_shape, len(devices))
    return Mesh(device_grid(shape, devices, jax.process_count()), AXES[: len(shape)])


def device_grid(shape: tuple[int, ...], devices: list[Any], processes: int) -> np.ndarray:
    """`devices` (all of them, or the first prod(shape) in one process) laid out as `shape`.

    The order comes from `mesh_utils`, which lays the last (most talkative) axis,
    'fsdp', along the fastest links of a TPU or GPU topology. Across processes a
    grid is built per process and the grids stacked along 'data' (then 'fsdp'), so
    that each process's devices are one contiguous run of the flattened mesh: they
    hold one contiguous block of the batch, the block
    `make_array_from_process_local_data` puts each process's local batch in.
    """
    n = math.prod(shape)
    if processes == 1:
        try:
            return mesh_utils.create_device_mesh(shape, devices[:n], allow_split_physical_axes=True)
        except (ValueError, NotImplementedError, AssertionError):
            # Part of a TPU slice may not be a whole torus to follow: plain order then.
            return np.asarray(devices[:n]).reshape(shape)
    if n != len(devices):
        raise ConfigError(
            f"mesh_shape {shape} uses {n} of {len(devices)} devices: with {processes} processes "
            "the mesh must use them all"
        )
    per_process, process_grid = _split_over_processes(shape, processes)
    return mesh_utils.create_hybrid_device_mesh(per_process, process_grid, devices, process_is_granule=True)


def _split_over_processes(shape: tuple[int, ...], processes: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    # (per-process shape, process grid): processes outermost in the flattened
    # (data, fsdp) order, so each one's devices are a contiguous run of it.
    d, f = (*shape, 1)[:2]
    if d % processes == 0:
        per, grid = (d // processes, f), (processes, 1)
    elif processes % d == 0 and f % (processes // d) == 0:
        per, grid = (1, f * d // processes), (d, processes // d)
    else:
        raise ConfigError(
            f"mesh_shape {shape} does not split into {processes} equal per-process blocks: "
            f"make its data size a multiple of {processes}"
        )
    return per[: len(shape)], grid[: len(shape)]


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every mesh axis: each device gets its own examples."""
    return NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names)))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same value on every device."""
    return NamedSharding(mesh, PartitionSpec())


def fsdp_spec(shape: tuple[int, ...], fsdp_size: int, min_size: int = FSDP_MIN_SIZE) -> PartitionSpec:
    """Where an array of `shape` lives on an 'fsdp' axis of `fsdp_size` devices.

    The largest dimension divisible by `fsdp_size` is split over 'fsdp' (of equal
    ones, the last: the output channels of a conv or dense kernel); arrays under
    `min_size` elements, scalars and arrays with no divisible dimension are replicated.
    """
    if fsdp_size <= 1 or math.prod(shape) < min_size:
        return PartitionSpec()
    dims = [i for i, n in enumerate(shape) if n % fsdp_size == 0]
    if not dims:
        return PartitionSpec()
    axis = max(dims, key=lambda i: (shape[i], i))
    return PartitionSpec(*(["fsdp" if i == axis else None for i in range(axis + 1)]))


def state_shardings(abstract_state: Any, mesh: Mesh, min_size: int | None = None) -> Any:
    """A NamedSharding for every leaf of the train state (a tree of arrays or shapes).

    Without an 'fsdp' axis (or with one of size 1) everything is replicated. With one,
    every leaf follows `fsdp_spec`: optimizer moments have their parameter's shape and
    so its sharding. `min_size` defaults to the module's FSDP_MIN_SIZE.
    """
    fsdp_size = dict(mesh.shape).get("fsdp", 1)
    min_size = FSDP_MIN_SIZE if min_size is None else min_size
    return jax.tree.map(
        lambda x: NamedSharding(mesh, fsdp_spec(tuple(np.shape(x)), fsdp_size, min_size)), abstract_state
    )


def check_batch(global_batch: int, mesh: Mesh) -> int:
    """This process's share of the global batch; refuses a batch that does not divide
    over the mesh's devices (all axes) or its processes."""
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
