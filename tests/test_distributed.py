"""How a process decides to join `jax.distributed`: from flags, JAX_* variables, or a cluster."""

import jax
import pytest

from jaxmusic.config import ConfigError
from jaxmusic.train import distributed
from jaxmusic.train.distributed import Plan, detect_cluster, plan, slurm_local_devices

# What `srun` gives task 3 of an 8-task step over two nodes of four GPUs.
SLURM = {
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_NODELIST": "gpu[01-02]",
    "SLURM_NTASKS": "8",
    "SLURM_PROCID": "3",
    "SLURM_LOCALID": "3",
    "SLURM_NODEID": "0",
    "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
}
GKE_TPU = {"TPU_WORKER_HOSTNAMES": "w-0,w-1,w-2,w-3", "TPU_WORKER_ID": "1"}


def test_detect_cluster():
    assert detect_cluster({}) is None
    assert detect_cluster(SLURM) == "slurm"
    assert detect_cluster({**SLURM, "SLURM_NTASKS": "1"}) is None  # one task is one process
    # The batch script itself, outside srun, has no step: JAX would find no cluster there.
    assert detect_cluster({k: v for k, v in SLURM.items() if k != "SLURM_STEP_NODELIST"}) is None
    assert detect_cluster(GKE_TPU) == "tpu"
    assert detect_cluster({"TPU_PROCESS_ADDRESSES": "a:8476,b:8476", "TPU_WORKER_ID": "0"}) == "tpu"
    assert detect_cluster({"TPU_WORKER_HOSTNAMES": "localhost", "TPU_WORKER_ID": "0"}) is None
    assert detect_cluster({"MEGASCALE_NUM_SLICES": "2"}) == "tpu"
    assert detect_cluster({"MEGASCALE_NUM_SLICES": "1"}) is None


def test_a_single_process_joins_nothing():
    assert plan({}) is None
    assert plan({**SLURM, "SLURM_NTASKS": "1"}) is None
    assert plan({"TPU_WORKER_HOSTNAMES": "localhost", "TPU_WORKER_ID": "0"}) is None


def test_flags_win_over_environment_and_cluster():
    env = {**SLURM, "JAX_COORDINATOR_ADDRESS": "other:1", "JAX_NUM_PROCESSES": "9", "JAX_PROCESS_ID": "8"}
    assert plan(env, True, "10.0.0.1:12355", 2, 1) == Plan("flags", "10.0.0.1:12355", 2, 1)


def test_jax_variables_are_an_explicit_form():
    env = {"JAX_COORDINATOR_ADDRESS": "host0:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2"}
    assert plan(env) == Plan("env", "host0:1234", 4, 2)
    # On a cluster, the ones not given are the cluster's to fill in.
    assert plan({**SLURM, "JAX_COORDINATOR_ADDRESS": "host0:1234"}) == Plan("slurm", "host0:1234")


def test_clusters_join_without_distributed_flag():
    assert plan(GKE_TPU) == Plan("tpu")
    assert plan(SLURM) == Plan("slurm")
    assert plan({}, auto=True) == Plan("auto")  # e.g. a Cloud TPU VM's slice, in its metadata


def test_slurm_local_devices():
    # Four GPUs visible to each of four tasks: JAX's own choice (the local id's GPU) is right.
    assert slurm_local_devices({**SLURM, "CUDA_VISIBLE_DEVICES": "0,1,2,3"}) is None
    # A task bound to its GPU sees it as device 0, whatever its local id.
    assert slurm_local_devices({**SLURM, "CUDA_VISIBLE_DEVICES": "2"}) == (0,)
    # One task per node drives all of the node's GPUs.
    one_per_node = {**SLURM, "SLURM_NTASKS": "2", "SLURM_STEP_TASKS_PER_NODE": "1(x2)"}
    assert slurm_local_devices({**one_per_node, "CUDA_VISIBLE_DEVICES": "0,1,2,3"}) == (0, 1, 2, 3)
    assert plan({**one_per_node, "CUDA_VISIBLE_DEVICES": "0,1"}) == Plan("slurm", local_device_ids=(0, 1))
    # Uneven steps: the second node runs one task.
    uneven = {**SLURM, "SLURM_NODEID": "1", "SLURM_STEP_TASKS_PER_NODE": "4,1"}
    assert slurm_local_devices({**uneven, "CUDA_VISIBLE_DEVICES": "0,1"}) == (0, 1)
    # No GPUs named, or the choice already made with JAX's own variable: left to JAX.
    assert slurm_local_devices(one_per_node) is None
    assert (
        slurm_local_devices({**one_per_node, "CUDA_VISIBLE_DEVICES": "0,1", "JAX_LOCAL_DEVICE_IDS": "0"})
        is None
    )


@pytest.mark.parametrize(
    ("environ", "args", "message"),
    [
        ({}, ("127.0.0.1:1", None, None), "--coordinator without the others"),
        ({}, (None, 2, 0), "--num-processes and --process-id without the others"),
        ({}, ("127.0.0.1", 2, 0), "--coordinator must be HOST:PORT"),
        ({}, ("127.0.0.1:1", 2, 2), r"--process-id must be in \[0, 2\), got 2"),
        ({}, ("127.0.0.1:1", 0, 0), "--num-processes must be at least 1"),
        ({"JAX_NUM_PROCESSES": "2"}, (None, None, None), "set all three"),
        (
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"},
            (None,) * 3,
            "integer",
        ),
        (
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "-1"},
            (None,) * 3,
            "JAX_PROCESS_ID",
        ),
    ],
)
def test_bad_combinations_say_what_to_do(environ, args, message):
    with pytest.raises(ConfigError, match=message) as e:
        plan(environ, False, *args)
    assert "\n" not in str(e.value)


def test_initialize_passes_the_plan_to_jax(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(distributed.os, "environ", dict(SLURM))
    distributed.initialize(False, "127.0.0.1:5", 2, 0)
    distributed.initialize()
    # Given everything, JAX's own cluster detection is switched off; else it does the rest.
    assert calls[0]["cluster_detection_method"] == "deactivate"
    assert calls[0]["coordinator_address"] == "127.0.0.1:5"
    assert calls[1]["coordinator_address"] is None
    assert calls[1]["cluster_detection_method"] is None


def test_a_cluster_jax_cannot_find_is_one_line(monkeypatch):
    def fail(**kw):
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(jax.distributed, "initialize", fail)
    monkeypatch.setattr(distributed.os, "environ", {})
    with pytest.raises(ConfigError, match="--distributed: no cluster JAX can join.*--coordinator"):
        distributed.initialize(True)


def test_single_process_never_initializes(monkeypatch):
    def fail(**kw):
        raise AssertionError("jax.distributed.initialize called")

    monkeypatch.setattr(jax.distributed, "initialize", fail)
    monkeypatch.setattr(distributed.os, "environ", {})
    distributed.initialize()
    assert not jax.distributed.is_initialized()
