"""The mesh from config.mesh_shape, the fsdp sharding rule, and training on a 'fsdp' axis."""

import dataclasses
import shutil

import jax
import numpy as np
import portpicker
import pytest
from conftest import TINY_CLI, start_cli, tiny_config
from jax.sharding import PartitionSpec as P

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import element_spec
from jaxmusic.data.sources import read_manifest
from jaxmusic.objectives.registry import build_objective
from jaxmusic.train import mesh
from jaxmusic.train.metrics_log import read_metrics
from jaxmusic.train.optimizer import make_optimizer
from jaxmusic.train.state import state_factory
from jaxmusic.train.trainer import train_and_evaluate

# The tiny encoder's largest kernel has 768 elements: a threshold under its kernels
# lets the tests shard them as FSDP_MIN_SIZE shards a real encoder's.
TINY_MIN_SIZE = 128


def losses(workdir):
    return {step: row["loss"] for step, row in sorted(read_metrics(workdir).items())}


def abstract_state(config):
    """The shapes of the train state `train_and_evaluate` builds for `config`."""
    manifest = read_manifest(config.data.dir)
    objective = build_objective(config, manifest)
    tx, _ = make_optimizer(config.optimizer, config.total_steps)
    init = state_factory(objective, tx, element_spec(objective.inputs, config.data.crop_samples, manifest))
    return jax.eval_shape(init, jax.random.PRNGKey(0))


def specs(shardings):
    return [s.spec for s in jax.tree.leaves(shardings)]


# --- the rule ---


@pytest.mark.parametrize(
    "shape, fsdp, min_size, spec",
    [
        ((3, 128, 256), 2, 1, P(None, None, "fsdp")),  # largest divisible dimension
        ((3, 256, 256), 4, 1, P(None, None, "fsdp")),  # a tie: the last one
        ((512, 64), 4, 1, P("fsdp")),
        ((10, 12), 4, 1, P(None, "fsdp")),
        ((12, 10), 4, 1, P("fsdp")),  # 10 does not divide by 4
        ((3, 5, 7), 2, 1, P()),  # nothing divides
        ((256,), 2, 2**12, P()),  # under min_size: a bias stays whole
        ((64, 64), 2, 2**12, P(None, "fsdp")),  # exactly min_size is sharded
        ((), 2, 1, P()),  # scalars
        ((512, 512), 1, 1, P()),  # an fsdp axis of one device shards nothing
    ],
)
def test_fsdp_spec(shape, fsdp, min_size, spec):
    assert mesh.fsdp_spec(shape, fsdp, min_size) == spec


def test_fsdp_min_size_default_shards_conv_kernels_not_biases():
    assert mesh.fsdp_spec((3, 128, 128), 2) == P(None, None, "fsdp")
    assert mesh.fsdp_spec((512,), 2) == P()


@pytest.mark.parametrize(
    "shape, resolved",
    [((-1,), (8,)), ((3,), (3,)), ((-1, 2), (4, 2)), ((2, -1), (2, 4)), ((1, 8), (1, 8)), ((2, 2), (2, 2))],
)
def test_mesh_dims_resolves_minus_one_to_the_rest(shape, resolved):
    assert mesh.mesh_dims(shape, 8) == resolved


@pytest.mark.parametrize(
    "shape, message",
    [
        ((), r"must be \(data,\) or \(data, fsdp\)"),
        ((2, 2, 2), r"must be \(data,\) or \(data, fsdp\)"),
        ((2.0,), r"integers, got \(2.0,\)"),
        ((0, 2), "entries must be positive, or -1"),
        ((-2,), "entries must be positive, or -1"),
        ((-1, -1), "may have one -1"),
        ((-1, 3), r"mesh_shape \(-1, 3\): 8 devices do not divide by 3"),
        ((16,), r"mesh_shape \(16,\) asks for 16 devices, 8 are available"),
        ((4, 4), r"mesh_shape \(4, 4\) asks for 16 devices, 8 are available"),
    ],
)
def test_bad_mesh_shapes_fail_in_one_line(shape, message):
    with pytest.raises(ConfigError, match=message) as e:
        mesh.mesh_dims(shape, 8)
    assert "\n" not in str(e.value)


def test_make_mesh_names_the_axes_and_takes_the_first_devices():
    m = mesh.make_mesh((2, -1))
    assert m.axis_names == ("data", "fsdp") and dict(m.shape) == {"data": 2, "fsdp": 2}
    assert mesh.batch_sharding(m).spec == P(("data", "fsdp"))
    m = mesh.make_mesh((-1,))
    assert m.axis_names == ("data",) and m.devices.size == 4
    assert list(mesh.make_mesh((2,)).devices) == jax.devices()[:2]


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    id: int
    process_index: int
    platform: str = "cpu"
    device_kind: str = "cpu"


@pytest.mark.parametrize(
    "shape, processes", [((4, 2), 2), ((2, 4), 4), ((8,), 2), ((1, 8), 2), ((8, 1), 8), ((2, 2), 2)]
)
def test_each_process_holds_a_contiguous_block_of_the_batch(shape, processes):
    n = int(np.prod(shape))
    devices = [FakeDevice(i, i // (n // processes)) for i in range(n)]
    grid = mesh.device_grid(shape, devices, processes)
    assert grid.shape == shape
    # The batch is split over the flattened (data, fsdp) order: each process must own a run of it.
    owners = [d.process_index for d in grid.reshape(-1)]
    assert owners == sorted(owners)


def test_meshes_that_cannot_be_split_by_process_fail_in_one_line():
    devices = [FakeDevice(i, i // 3) for i in range(6)]
    with pytest.raises(ConfigError, match="does not split into 2 equal per-process blocks"):
        mesh.device_grid((3, 2), devices, 2)
    with pytest.raises(
        ConfigError, match=r"uses 4 of 6 devices: with 2 processes the mesh must use them all"
    ):
        mesh.device_grid((2, 2), devices, 2)


def test_batch_must_divide_over_both_axes():
    with pytest.raises(ConfigError, match="batch_size 6 does not divide over 4 devices") as e:
        mesh.check_batch(6, mesh.make_mesh((2, 2)))
    assert "\n" not in str(e.value)
    assert mesh.check_batch(8, mesh.make_mesh((2, 2))) == 8


def test_state_is_replicated_without_an_fsdp_axis(tiny_data):
    abstract = abstract_state(tiny_config(tiny_data))
    for shape in ((4,), (4, 1)):
        assert set(specs(mesh.state_shardings(abstract, mesh.make_mesh(shape), min_size=1))) == {P()}


def test_optimizer_moments_are_sharded_as_their_parameters(tiny_data):
    abstract = abstract_state(tiny_config(tiny_data))
    shardings = mesh.state_shardings(abstract, mesh.make_mesh((2, 2)), min_size=TINY_MIN_SIZE)
    params = specs(shardings["params"])
    assert any("fsdp" in s for s in params) and P() in params  # kernels split, biases whole
    adam = shardings["opt_state"][0]
    assert specs(adam.mu) == params and specs(adam.nu) == params
    assert shardings["step"].spec == P() and adam.count.spec == P()


# --- training ---


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """The tiny run, 5 steps, on a (4,) and a (2, 2) mesh; the first checkpoints step 3."""
    root = tmp_path_factory.mktemp("mesh_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mesh, "FSDP_MIN_SIZE", TINY_MIN_SIZE)
        for shape in ((4,), (2, 2)):
            c = tiny_config(tiny_data)
            c.mesh_shape = shape
            c.checkpoint_every_steps = 3
            train_and_evaluate(c, root / str(len(shape)))
    return root / "1", root / "2"


def test_data_and_fsdp_meshes_train_alike(runs, tiny_data):
    data_only, fsdp = (losses(w) for w in runs)
    assert list(fsdp) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(list(fsdp.values()), list(data_only.values()), rtol=1e-5)
    # ... and the (2, 2) run really did split parameters over 'fsdp'.
    c = tiny_config(tiny_data)
    shardings = mesh.state_shardings(abstract_state(c), mesh.make_mesh((2, 2)), min_size=TINY_MIN_SIZE)
    assert any("fsdp" in s for s in specs(shardings["params"]))


def test_a_data_mesh_checkpoint_resumes_on_an_fsdp_mesh(runs, tiny_data, tmp_path, monkeypatch):
    data_only, _ = runs
    workdir = tmp_path / "resumed"
    shutil.copytree(data_only, workdir)
    shutil.rmtree(workdir / "checkpoints" / "5")
    (workdir / "metrics.jsonl").unlink()
    # The mesh changes no number the run computes (the test above), so it may change on resume.
    monkeypatch.setattr(mesh, "FSDP_MIN_SIZE", TINY_MIN_SIZE)
    c = tiny_config(tiny_data)
    c.mesh_shape = (2, 2)
    c.checkpoint_every_steps = 3
    train_and_evaluate(c, workdir)  # Orbax reshards the replicated checkpoint onto 'fsdp'
    resumed, uninterrupted = losses(workdir), losses(data_only)
    assert list(resumed) == [4, 5]
    np.testing.assert_allclose(list(resumed.values()), [uninterrupted[4], uninterrupted[5]], rtol=1e-5)


# Wide enough that a kernel, (3, 32, 64), reaches FSDP_MIN_SIZE in a subprocess too.
WIDER = {"block_channels": (8, 8, 32), "final_channels": 64}


@pytest.mark.slow  # minutes on 2 cores: run by .ci/run with -m slow
def test_two_processes_on_an_fsdp_mesh_train_like_one(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.model.samplecnn.update(WIDER)
    c.mesh_shape = (4,)
    train_and_evaluate(c, tmp_path / "single")
    c.mesh_shape = (2, 2)
    assert any("fsdp" in s for s in specs(mesh.state_shardings(abstract_state(c), mesh.make_mesh((2, 2)))))
    port = portpicker.pick_unused_port()
    wider = [a for a in TINY_CLI if "block_channels" not in a and "final_channels" not in a] + [
        "--config.model.samplecnn.block_channels=(8,8,32)",
        "--config.model.samplecnn.final_channels=64",
    ]
    args = [
        "train", "--config", "configs/quickstart.py", "--workdir", str(tmp_path / "multi"), *wider,
        f"--config.data.dir={tiny_data}", "--config.total_steps=5", "--config.log_every_steps=1",
        "--config.mesh_shape=(2,2)", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
    ]  # fmt: skip
    procs = [start_cli(*args, "--process-id", str(i)) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    single, multi = losses(tmp_path / "single"), losses(tmp_path / "multi")
    assert list(multi) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(list(multi.values()), list(single.values()), rtol=1e-5)
