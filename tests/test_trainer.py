import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CLI, start_cli, tiny_config

from jaxmusic.data.subsets import select
from jaxmusic.train.checkpoint import ResumeError
from jaxmusic.train.metrics_log import read_metrics
from jaxmusic.train.trainer import TrainingDiverged, train_and_evaluate


def losses(workdir):
    return {step: row["loss"] for step, row in sorted(read_metrics(workdir).items())}


@pytest.mark.slow  # minutes on 2 cores with the rest: run by .ci/run with -m slow
def test_one_and_four_devices_agree(tiny_data, tmp_path):
    runs = {}
    for n in (1, 4):
        c = tiny_config(tiny_data)
        c.mesh_shape = (n,)
        train_and_evaluate(c, tmp_path / f"d{n}")
        runs[n] = losses(tmp_path / f"d{n}")
    assert list(runs[1]) == [1, 2, 3, 4, 5]
    one, four = np.array(list(runs[1].values())), np.array(list(runs[4].values()))
    np.testing.assert_allclose(four, one, rtol=1e-5)
    assert one[0] != one[-1]  # it is actually training


def test_a_budget_trains_on_its_subset_and_is_recorded(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.data.budget = "minutes:0.1"  # 6 s: six of the 28 one-second training clips
    c.data.budget_seed = 3
    c.total_steps = 1
    train_and_evaluate(c, tmp_path)
    budget = json.loads((tmp_path / "budget.json").read_text())
    assert budget["budget"] == "minutes:0.1" and budget["clips"] == 6 and budget["minutes"] == 0.1
    assert budget == select(tiny_data, "train", "minutes:0.1", seed=3)


def test_nan_loss_stops_with_one_line_and_keeps_good_checkpoints(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.augment.gain_p = 1.0
    c.augment.gain_db = (1e6, 1e6)  # a gain of 10^50000 overflows the audio: NaN at once
    with pytest.raises(TrainingDiverged, match="loss is nan at step 1; no checkpoint was saved yet") as e:
        train_and_evaluate(c, tmp_path)
    assert "\n" not in str(e.value)
    assert not list((tmp_path / "checkpoints").glob("[0-9]*"))


@pytest.mark.slow  # trains several times: run by .ci/run with -m slow
def test_resume_with_a_different_config_is_refused(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.total_steps = 2
    train_and_evaluate(c, tmp_path)
    c.total_steps = 4  # allowed to change
    assert train_and_evaluate(c, tmp_path)["step"] == 4
    c.objective.simclr.temperature = 0.2
    with pytest.raises(ResumeError, match="objective.simclr.temperature"):
        train_and_evaluate(c, tmp_path)


TOTAL = 150


def cli_train(data_dir, workdir):
    return start_cli(
        "train",
        "--config",
        "configs/quickstart.py",
        "--workdir",
        str(workdir),
        *TINY_CLI,
        f"--config.data.dir={data_dir}",
        f"--config.total_steps={TOTAL}",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=10",
    )


def wait_for_checkpoint(proc, workdir: Path, step: int):
    target = workdir / "checkpoints" / str(step)
    deadline = time.time() + 240
    while not target.exists():  # Orbax renames a step's folder into place when complete
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = cli_train(tiny_data, workdir)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return losses(workdir)


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_killed_run_resumes_exactly(tiny_data, tmp_path, uninterrupted, sig):
    proc = cli_train(tiny_data, tmp_path)
    wait_for_checkpoint(proc, tmp_path, 20)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # SIGTERM: saves where it is and exits cleanly
        assert proc.returncode == 0, err[-2000:]
    stopped_at = max(losses(tmp_path))
    assert stopped_at < TOTAL, "the run finished before it was killed; the test proves nothing"
    resumed = cli_train(tiny_data, tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    got = losses(tmp_path)
    assert list(got) == list(uninterrupted)
    # Exact equality, step by step: same parameters, optimizer state, randomness and data order.
    assert got == uninterrupted
    # keep_checkpoints=3: only the newest three complete steps remain.
    kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert kept == [TOTAL - 20, TOTAL - 10, TOTAL]
