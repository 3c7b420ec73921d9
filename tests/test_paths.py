"""Workdirs through one path API: object-store names survive, local ones are absolute."""

import os

from jaxmusic.paths import append_text, as_path, is_remote
from jaxmusic.train import checkpoint
from jaxmusic.train.metrics_log import MetricsLog, read_metrics


def test_object_store_paths_are_kept_whole():
    for name in ("gs://bucket/runs/clmr", "s3://bucket/run"):
        assert is_remote(name)
        assert str(checkpoint.checkpoints_dir(name)) == f"{name}/checkpoints"


def test_local_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not is_remote("runs/a")
    assert str(checkpoint.checkpoints_dir("runs/a")) == os.path.join(
        str(tmp_path), "runs", "a", "checkpoints"
    )


def test_append_and_metrics_through_the_path_api(tmp_path):
    p = as_path(tmp_path) / "x.txt"
    append_text(p, "a\n")
    append_text(p, "b\n")
    assert p.read_text() == "a\nb\n"
    log = MetricsLog(as_path(tmp_path))
    log.write(1, {"loss": 2.0})
    log.write(1, {"loss": 1.5})
    log.close()
    assert read_metrics(tmp_path) == {1: {"loss": 1.5}}
