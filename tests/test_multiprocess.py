"""Real multi-process training: two `jax.distributed` processes on 127.0.0.1."""

import re
import signal
import time

import numpy as np
import portpicker
import pytest
from conftest import TINY_CLI, start_cli, tiny_config

from jaxmusic.train.metrics_log import read_metrics
from jaxmusic.train.trainer import train_and_evaluate


@pytest.mark.slow  # minutes on 2 cores with the rest: run by .ci/run with -m slow
def test_two_processes_train_like_one(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.mesh_shape = (4,)
    c.checkpoint_every_steps = 3
    train_and_evaluate(c, tmp_path / "single")
    procs = _two_processes(
        tmp_path / "multi", tiny_data, "--config.total_steps=5", "--config.checkpoint_every_steps=3"
    )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    single = {s: r["loss"] for s, r in read_metrics(tmp_path / "single").items()}
    multi = {s: r["loss"] for s, r in read_metrics(tmp_path / "multi").items()}
    assert list(multi) == [1, 2, 3, 4, 5]  # one log, written by process 0 only
    np.testing.assert_allclose(list(multi.values()), list(single.values()), rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "multi" / "checkpoints").iterdir() if p.name.isdigit()) == [
        "3",
        "5",
    ]


def _two_processes(workdir, data_dir, *extra):
    port = portpicker.pick_unused_port()
    return [
        start_cli(
            "train",
            "--config",
            "configs/quickstart.py",
            "--workdir",
            str(workdir),
            *TINY_CLI,
            f"--config.data.dir={data_dir}",
            "--config.log_every_steps=1",
            *extra,
            "--coordinator",
            f"127.0.0.1:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
        )
        for i in range(2)
    ]


@pytest.mark.slow  # three trainings, two of them multi-process
def test_a_run_saved_by_one_process_resumes_under_two(tiny_data, tmp_path):
    def one_process(workdir, steps):
        p = start_cli(
            "train", "--config", "configs/quickstart.py", "--workdir", str(workdir), *TINY_CLI,
            f"--config.data.dir={tiny_data}", "--config.log_every_steps=1", f"--config.total_steps={steps}",
            "--config.checkpoint_every_steps=4", devices=4,
        )  # fmt: skip
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]

    one_process(tmp_path / "whole", 8)
    one_process(tmp_path / "split", 4)
    # Steps 5-8 under two processes x two devices: the data position converts exactly.
    procs = _two_processes(
        tmp_path / "split", tiny_data, "--config.total_steps=8", "--config.checkpoint_every_steps=4"
    )
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "resuming from step 4" in outs[0][0]
    whole = {s: r["loss"] for s, r in read_metrics(tmp_path / "whole").items()}
    split = {s: r["loss"] for s, r in read_metrics(tmp_path / "split").items()}
    assert list(split) == list(whole)
    np.testing.assert_allclose(list(split.values()), list(whole.values()), rtol=1e-5)


@pytest.mark.slow  # a multi-process run preempted
def test_sigterm_to_one_process_makes_all_save_the_same_step(tiny_data, tmp_path):
    procs = _two_processes(
        tmp_path, tiny_data, "--config.total_steps=100000", "--config.checkpoint_every_steps=100000"
    )
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 240
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 3:
        assert all(p.poll() is None for p in procs) and time.time() < deadline
        time.sleep(0.05)
    t0 = time.time()
    procs[1].send_signal(signal.SIGTERM)  # as a cluster preempting one host
    outs = [p.communicate(timeout=120) for p in procs]
    assert time.time() - t0 < 60
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    (step,) = map(int, re.findall(r"SIGTERM: saved step (\d+)", outs[0][0]))
    steps = [int(d.name) for d in (tmp_path / "checkpoints").iterdir() if d.name.isdigit()]
    assert steps == [step] and (tmp_path / "checkpoints" / str(step) / "commit_success.txt").is_file()
    # Both processes wrote their data iterator's position at that step.
    assert sorted(f.name for f in (tmp_path / "checkpoints" / str(step) / "data").glob("*.json")) == [
        "process_0-of-2.json",
        "process_1-of-2.json",
    ]
