"""Real multi-process training: two `jax.distributed` processes on 127.0.0.1."""

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
    port = portpicker.pick_unused_port()
    procs = [
        start_cli(
            "train",
            "--config",
            "configs/quickstart.py",
            "--workdir",
            str(tmp_path / "multi"),
            *TINY_CLI,
            f"--config.data.dir={tiny_data}",
            "--config.total_steps=5",
            "--config.log_every_steps=1",
            "--config.checkpoint_every_steps=3",
            "--coordinator",
            f"127.0.0.1:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
        )
        for i in range(2)
    ]
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
