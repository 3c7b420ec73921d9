"""Joining a multi-process JAX runtime (`jax.distributed`), before any device is used.

Where this process's place in the job comes from, first match wins:

1. flags: `--coordinator HOST:PORT --num-processes N --process-id I` (all three);
2. the environment: `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`
   (what launch scripts export; on a cluster any of them may be left to the cluster);
3. a multi-process cluster seen in the environment (`detect_cluster`): a SLURM step of
   more than one task, or a multi-host Cloud TPU slice that says so in its environment
   (GKE, multislice); JAX then finds the coordinator itself;
4. `--distributed`: ask JAX to find the cluster, which also covers Cloud TPU VMs whose
   slice is described only by the metadata server.

Anything else is a single process and joins nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

import jax

from jaxmusic.config import ConfigError

_FLAGS = ("--coordinator", "--num-processes", "--process-id")
_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
# The variables JAX's SlurmCluster requires (jax/_src/clusters/slurm_cluster.py): with
# any missing, e.g. in the batch script outside `srun`, JAX would not find the cluster.
_SLURM = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How this process joins; fields left None are found by JAX's cluster detection."""

    source: str  # "flags", "env", "slurm", "tpu" or "auto"
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    local_device_ids: tuple[int, ...] | None = None

    @property
    def complete(self) -> bool:
        """True when JAX is told everything and must not look for a cluster."""
        return None not in (self.coordinator, self.num_processes, self.process_id)


def _int(environ: Mapping[str, str], key: str) -> int | None:
    try:
        return int(environ[key])
    except (KeyError, ValueError):
        return None


def _count(value: str | None) -> int:
    return len([h for h in (value or "").split(",") if h.strip()])


def detect_cluster(environ: Mapping[str, str]) -> str | None:
    """The multi-process cluster `environ` shows: "slurm", "tpu", or None for none.

    Reads the variables JAX's own cluster detection reads (jax/_src/clusters/): SLURM's
    step variables, GKE's TPU worker list, and the multislice (Megascale) slice count.
    """
    if all(k in environ for k in _SLURM) and (_int(environ, "SLURM_NTASKS") or 0) > 1:
        return "slurm"
    workers = environ.get("TPU_PROCESS_ADDRESSES") or environ.get("TPU_WORKER_HOSTNAMES")
    if (_count(workers) > 1 and "TPU_WORKER_ID" in environ) or (
        _int(environ, "MEGASCALE_NUM_SLICES") or 0
    ) > 1:
        return "tpu"
    return None


def _tasks_on_node(environ: Mapping[str, str]) -> int | None:
    # SLURM_STEP_TASKS_PER_NODE reads like "8(x2),4": 8 tasks on each of two nodes, then 4.
    spec = environ.get("SLURM_STEP_TASKS_PER_NODE") or environ.get("SLURM_TASKS_PER_NODE")
    node = _int(environ, "SLURM_NODEID")
    if not spec or node is None:
        return None
    counts: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not m:
            return None
        counts += [int(m[1])] * int(m[2] or 1)
    return counts[node] if node < len(counts) else None


def slurm_local_devices(environ: Mapping[str, str]) -> tuple[int, ...] | None:
    """The GPUs this SLURM task drives, where JAX's own choice would be wrong.

    JAX gives the i-th task of a node the i-th GPU it sees. That breaks twice: a task
    bound to its own GPU (`--gpus-per-task=1`) sees it as device 0, and a single task
    per node would use one GPU of all it sees. None leaves the choice to JAX (also
    when `JAX_LOCAL_DEVICE_IDS` is set, which JAX reads itself).
    """
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or "JAX_LOCAL_DEVICE_IDS" in environ:
        return None
    n = _count(visible)
    if n == 1:
        return (0,)
    if n > 1 and _tasks_on_node(environ) == 1:
        return tuple(range(n))
    return None


def _explicit(
    source: str, names: tuple[str, str, str], coordinator: str, num_processes: int, process_id: int
) -> Plan:
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{names[0]} must be HOST:PORT (e.g. 127.0.0.1:12355), got '{coordinator}'")
    if num_processes < 1:
        raise ConfigError(f"{names[1]} must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"{names[2]} must be in [0, {num_processes}), got {process_id}")
    return Plan(source, coordinator, num_processes, process_id)


def _from_env(environ: Mapping[str, str], cluster: str | None, auto: bool) -> Plan | None:
    given = {k: environ[k] for k in _ENV if environ.get(k)}
    if not given:
        return None
    for k in _ENV[1:]:
        if k in given and not given[k].lstrip("-").isdigit():
            raise ConfigError(f"{k} must be an integer, got '{given[k]}'")
    coordinator = given.get(_ENV[0])
    num = int(given[_ENV[1]]) if _ENV[1] in given else None
    pid = int(given[_ENV[2]]) if _ENV[2] in given else None
    if coordinator is not None and num is not None and pid is not None:
        return _explicit("env", _ENV, coordinator, num, pid)
    if cluster is None and not auto:
        missing = ", ".join(k for k in _ENV if k not in given)
        raise ConfigError(
            f"{', '.join(given)} set without {missing}: set all three, or unset them for a single process"
        )
    return Plan(cluster or "auto", coordinator, num, pid)


def plan(
    environ: Mapping[str, str],
    auto: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> Plan | None:
    """How `initialize` would join given these flags and this environment; None: it would not."""
    flags = (coordinator, num_processes, process_id)
    if any(v is not None for v in flags):
        if coordinator is None or num_processes is None or process_id is None:
            given = " and ".join(n for n, v in zip(_FLAGS, flags, strict=True) if v is not None)
            raise ConfigError(
                f"{given} without the others: pass --coordinator, --num-processes and --process-id "
                "together, or none of them (with --distributed on a cluster)"
            )
        return _explicit("flags", _FLAGS, coordinator, num_processes, process_id)
    cluster = detect_cluster(environ)
    p = _from_env(environ, cluster, auto)
    if p is None and (cluster or auto):
        p = Plan(cluster or "auto")
    if p is not None and not p.complete and cluster == "slurm":
        p = dataclasses.replace(p, local_device_ids=slurm_local_devices(environ))
    return p


def initialize(
    auto: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join the runtime `plan` describes for `os.environ`; a single process joins nothing."""
    p = plan(os.environ, auto, coordinator, num_processes, process_id)
    if p is None or jax.distributed.is_initialized():
        return
    try:
        jax.distributed.initialize(
            coordinator_address=p.coordinator,
            num_processes=p.num_processes,
            process_id=p.process_id,
            local_device_ids=list(p.local_device_ids) if p.local_device_ids is not None else None,
            # Given everything, JAX must not let a cluster it detects replace any of it
            # (it would, for instance, pin each SLURM task to one GPU).
            cluster_detection_method="deactivate" if p.complete else None,
        )
    except ValueError as e:
        if p.complete:
            raise ConfigError(f"jax.distributed could not start from {p.source}: {e}") from None
        where = {"auto": "--distributed", "slurm": "SLURM", "tpu": "the TPU environment"}[p.source]
        raise ConfigError(
            f"{where}: no cluster JAX can join ({e}): pass --coordinator, --num-processes and --process-id"
        ) from None
