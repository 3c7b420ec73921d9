"""Faults a long run meets, each survived: damaged checkpoints, divergence, bad
workdirs, a full disk during a save, SIGTERM at any moment, bad embeddings."""

import json
import logging
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CLI, start_cli, tiny_config

from jaxmusic.config import ConfigError
from jaxmusic.evaluate.embed import EmbeddingsError, read_split, write_embeddings
from jaxmusic.evaluate.report import probe_all
from jaxmusic.train import checkpoint
from jaxmusic.train.metrics_log import read_metrics
from jaxmusic.train.trainer import TrainingDiverged, data_seed, train_and_evaluate

# ------------------------------------------------------------------ damaged checkpoints


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A tiny run with complete checkpoints at steps 2 and 4."""
    workdir = tmp_path_factory.mktemp("trained")
    c = tiny_config(tiny_data)
    c.total_steps, c.checkpoint_every_steps = 4, 2
    train_and_evaluate(c, workdir)
    return workdir


def _largest(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def truncate_chunk(ckpt: Path) -> None:
    f = _largest(ckpt / "4" / "state")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def flip_bytes(ckpt: Path) -> None:
    f = _largest(ckpt / "4" / "state")
    data = bytearray(f.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0x5A
    f.write_bytes(bytes(data))


DAMAGE = {
    "truncated chunk": truncate_chunk,
    "flipped bytes": flip_bytes,
    "no manifest.ocdbt": lambda c: (c / "4" / "state" / "manifest.ocdbt").unlink(),
    "no _METADATA": lambda c: (c / "4" / "state" / "_METADATA").unlink(),
    "no data iterator": lambda c: shutil.rmtree(c / "4" / "data"),
    "empty newer step": lambda c: (c / "6").mkdir(),
    "newer step without marker": lambda c: (
        shutil.copytree(c / "4", c / "6"),
        (c / "6" / "commit_success.txt").unlink(),
    ),
}


def damaged_copy(trained: Path, tmp_path: Path, damage: str) -> Path:
    workdir = tmp_path / "w"
    shutil.copytree(trained, workdir)
    DAMAGE[damage](workdir / "checkpoints")
    return workdir


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_embed_skips_a_damaged_newest_checkpoint(trained, tmp_path, damage):
    workdir = damaged_copy(trained, tmp_path, damage)
    warnings = []
    variables, step = checkpoint.restore_encoder(workdir, warn=warnings.append)
    if damage == "no data iterator":  # what the encoder needs is whole: step 4 is used
        assert (step, warnings) == (4, [])
        return
    bad, good_step = (6, 4) if "newer" in damage else (4, 2)
    assert step == good_step, warnings
    assert len(warnings) == 1
    assert f"checkpoint step {bad} in " in warnings[0] and "damaged" in warnings[0]
    good, _ = checkpoint.restore_encoder(trained)
    assert all(np.all(np.isfinite(x)) for x in __import__("jax").tree.leaves(variables))
    assert __import__("jax").tree.structure(variables) == __import__("jax").tree.structure(good)


SLOW = pytest.mark.slow  # each trains again: run by .ci/run with -m slow


# Every kind of damage is detected in the embed test above; training is shown here on
# the two that matter to it: damage inside the newest step, and a newer unfinished step.
@pytest.mark.parametrize("damage", ["flipped bytes", pytest.param("empty newer step", marks=SLOW)])
def test_training_resumes_from_the_newest_restorable_checkpoint(tiny_data, trained, tmp_path, damage, capsys):
    workdir = damaged_copy(trained, tmp_path, damage)
    c = tiny_config(tiny_data)
    c.total_steps, c.checkpoint_every_steps = 6, 2
    result = train_and_evaluate(c, workdir)
    out = capsys.readouterr().out
    assert result["step"] == 6
    bad, good_step = (6, 4) if "newer" in damage else (4, 2)
    assert re.search(
        rf"checkpoint step {bad} in \S+ is damaged \(.+\): moved to \S+checkpoints.damaged/{bad}", out
    )
    assert f"resuming from step {good_step}" in out
    # The damaged step was set aside, not deleted, and the run saved its own steps 4 and 6.
    assert (workdir / "checkpoints.damaged" / str(bad)).is_dir()
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())[-2:] == [4, 6]
    # Training went on from the restored state as the first run did: the same losses.
    first, again = read_metrics(trained), read_metrics(workdir)
    assert all(again[s]["loss"] == first[s]["loss"] for s in range(good_step + 1, 5))


@SLOW
def test_every_checkpoint_damaged_starts_afresh_with_a_warning(tiny_data, trained, tmp_path, capsys):
    workdir = damaged_copy(trained, tmp_path, "empty newer step")
    for step in (2, 4):
        (workdir / "checkpoints" / str(step) / "state" / "_METADATA").unlink()
    c = tiny_config(tiny_data)
    c.total_steps = 1
    assert train_and_evaluate(c, workdir)["step"] == 1
    out = capsys.readouterr().out
    assert out.count("is damaged") == 3 and "resuming" not in out


# ------------------------------------------------------------------ divergence


def test_an_update_that_makes_parameters_non_finite_is_never_saved(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.checkpoint_every_steps = 1
    c.optimizer.learning_rate = 1e39  # inf in float32: step 1's loss is finite, its update is not
    with pytest.raises(TrainingDiverged, match="non-finite at step 1; no checkpoint was saved yet") as e:
        train_and_evaluate(c, tmp_path)
    assert "\n" not in str(e.value)
    assert not list((tmp_path / "checkpoints").glob("[0-9]*"))


@SLOW
def test_the_printed_remedy_for_a_divergence_works_and_is_recorded(tiny_data, trained, tmp_path, capsys):
    workdir = tmp_path / "w"
    shutil.copytree(trained, workdir)
    c = tiny_config(tiny_data)
    c.total_steps, c.checkpoint_every_steps = 6, 2
    c.optimizer.learning_rate = 1e39  # the run goes on at a rate that diverges at once
    with pytest.raises(
        TrainingDiverged, match="non-finite at step 5; the last good checkpoint is step 4"
    ) as e:
        train_and_evaluate(c, workdir)
    assert "--config.optimizer.learning_rate=SMALLER" in str(e.value)
    c.optimizer.learning_rate = 1e-4  # what the message says to do
    assert train_and_evaluate(c, workdir)["step"] == 6
    assert "with optimizer.learning_rate 0.0003 -> 0.0001" in capsys.readouterr().out
    lines = [json.loads(x) for x in (workdir / "resumes.jsonl").read_text().splitlines()]
    assert lines[-1] == {"step": 4, "changes": {"optimizer.learning_rate": {"was": 3e-4, "now": 1e-4}}}
    # The new rate is the run's config from now on: a further resume with it is no change.
    c.total_steps = 7
    train_and_evaluate(c, workdir)
    assert len((workdir / "resumes.jsonl").read_text().splitlines()) == len(lines)


# ------------------------------------------------------------------ workdirs


def _train_cli(workdir, data_dir, *extra, preexec=None, timeout=300):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxmusic.cli",
            "train",
            "--config",
            "configs/quickstart.py",
            "--workdir",
            str(workdir),
            *TINY_CLI,
            f"--config.data.dir={data_dir}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
    )


@pytest.mark.parametrize("problem", ["checkpoints is a file", "workdir under a file", "cannot create"])
def test_workdir_problems_are_one_line_before_compiling(tiny_data, tmp_path, problem, compiles):
    c = tiny_config(tiny_data)
    if problem == "checkpoints is a file":
        workdir = tmp_path / "w"
        workdir.mkdir()
        (workdir / "checkpoints").write_text("not a folder")
        expect = "checkpoints is a file, where checkpoints go"
    elif problem == "workdir under a file":
        (tmp_path / "f").write_text("x")
        workdir, expect = tmp_path / "f" / "w", "is a file, not a folder"
    else:
        workdir, expect = Path("/proc/self/jaxmusic-w"), "cannot create --workdir"
    with pytest.raises(ConfigError, match=expect) as e:
        train_and_evaluate(c, workdir)
    assert compiles.events == [] and "\n" not in str(e.value)


def _limit_file_size(limit: int):
    def apply():
        # A file may not grow beyond `limit` bytes: writes then fail with EFBIG, as a full
        # disk fails them with ENOSPC (SIGXFSZ ignored so the write returns the error).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow  # three launches of the command
def test_a_full_disk_during_a_save_is_one_line_and_keeps_older_checkpoints(tiny_data, tmp_path):
    args = ("--config.log_every_steps=1", "--config.checkpoint_every_steps=2")
    first = _train_cli(tmp_path, tiny_data, "--config.total_steps=2", *args)
    assert first.returncode == 0, first.stderr[-2000:]
    t0 = time.time()
    full = _train_cli(tmp_path, tiny_data, "--config.total_steps=4", *args, preexec=_limit_file_size(8192))
    assert time.time() - t0 < 120  # no stall
    assert full.returncode == 2, full.stderr[-3000:]
    (line,) = [x for x in full.stderr.splitlines() if x.startswith("jaxmusic: error:")]
    assert "saving checkpoint step 4" in line and "older checkpoints are intact" in line, full.stderr[-3000:]
    assert "Traceback" not in full.stderr
    again = _train_cli(tmp_path, tiny_data, "--config.total_steps=4", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from step 2" in again.stdout and "is damaged" not in again.stdout


@SLOW
def test_rerunning_a_finished_run_says_so_and_no_orbax_call_is_deprecated(tiny_data, tmp_path, capsys):
    from jaxmusic.cli import run

    argv = ["train", "--config", "configs/quickstart.py", "--workdir", str(tmp_path), *TINY_CLI,
            f"--config.data.dir={tiny_data}", "--config.total_steps=2"]  # fmt: skip
    # Train, resume (nothing left to do) and embed's restore, with every warning and
    # library log line recorded: none may be a deprecation from our own Orbax calls.
    logged = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logging.getLogger("absl").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert run(argv) == 0
            capsys.readouterr()
            assert run(argv) == 0
            checkpoint.restore_encoder(tmp_path)
    finally:
        logging.getLogger("absl").removeHandler(handler)
    deprecations = [
        str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))
    ]
    assert deprecations == [] and not [m for m in logged if "deprecat" in m.lower()]
    out = capsys.readouterr().out
    assert "resuming from step 2" in out
    assert "already trained to step 2 (total_steps): nothing to do" in out and "nan" not in out


def test_seed_sets_the_data_order_unless_shuffle_seed_is_given(tiny_data):
    c = tiny_config(tiny_data)
    c.seed = 7
    assert data_seed(c) == 7
    c.data.shuffle_seed = 3
    assert data_seed(c) == 3


def test_a_negative_crop_is_refused_before_compiling(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.data.crop_samples = -729
    with pytest.raises(ConfigError, match="data.crop_samples=-729"):
        train_and_evaluate(c, tmp_path)


# ------------------------------------------------------------------ SIGTERM


@pytest.mark.slow  # three launches of a compute-bound run: run by .ci/run with -m slow
def test_sigterm_always_saves_the_step_it_names(tiny_data, tmp_path):
    # A step long enough that the signal often lands while the host waits for the device.
    heavy = [
        "--config.model.samplecnn.first_channels=64",
        "--config.model.samplecnn.block_channels=(64,64,128)",
        "--config.model.samplecnn.final_channels=128",
        "--config.batch_size=16",
        "--config.total_steps=1000",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=1000",
    ]
    rng = np.random.default_rng(0)
    previous = None
    for trial in range(3):
        proc = start_cli(
            "train", "--config", "configs/quickstart.py", "--workdir", str(tmp_path), *TINY_CLI,
            f"--config.data.dir={tiny_data}", *heavy,
        )  # fmt: skip
        metrics = tmp_path / "metrics.jsonl"
        start = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        deadline = time.time() + 240
        while not metrics.exists() or len(metrics.read_text().splitlines()) < start + 2:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert time.time() - t0 < 60
        assert proc.returncode == 0, err[-2000:]
        if previous is not None:
            assert f"resuming from step {previous}" in out
        (step,) = map(int, re.findall(r"SIGTERM: saved step (\d+)", out))
        assert (tmp_path / "checkpoints" / str(step) / "commit_success.txt").is_file(), (trial, step, out)
        steps = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
        assert max(steps) == step
        previous = step


# ------------------------------------------------------------------ embed and probe


def test_embed_checks_splits_first_and_skips_an_empty_one(tiny_data, trained, tmp_path, capsys):
    c = tiny_config(tiny_data)
    c.embed.splits = ("train", "nope")
    with pytest.raises(ConfigError, match=r"embed.splits \['nope'\] are not splits of"):
        write_embeddings(c, trained, tmp_path / "e", progress=False)
    assert not (tmp_path / "e").exists()
    # A dataset whose valid split has no clips (prepare can reject every file of one).
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    manifest = json.loads((data / "manifest.json").read_text())
    from jaxmusic.prepare.shards import write_shard

    write_shard(data / "empty.array_record", [])
    manifest["splits"]["valid"] = {
        **manifest["splits"]["valid"],
        "clips": 0,
        "shards": ["empty.array_record"],
    }
    (data / "manifest.json").write_text(json.dumps(manifest))
    c.data.dir = str(data)
    c.embed.splits = ("train", "valid", "test")
    out = write_embeddings(c, trained, tmp_path / "e2", progress=False)
    assert "split 'valid' of" in capsys.readouterr().out
    assert json.loads((out / "embeddings.json").read_text())["splits"] == ["train", "test"]
    assert (out / "train.npz").is_file() and not (out / "valid.npz").exists()


@pytest.fixture(scope="module")
def embedded(tiny_data, trained, tmp_path_factory):
    c = tiny_config(tiny_data)
    return write_embeddings(c, trained, tmp_path_factory.mktemp("emb"), progress=False)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "jaxmusic.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "fault", ["truncated npz", "missing label", "nan embeddings", "unknown task", "not a folder"]
)
def test_probe_names_a_bad_file_task_or_embedding_in_one_line(embedded, tmp_path, fault):
    emb = tmp_path / "emb"
    shutil.copytree(embedded, emb)
    tasks = []
    if fault == "truncated npz":
        f = emb / "valid.npz"
        f.write_bytes(f.read_bytes()[:1000])
        expect = "valid.npz is damaged"
    elif fault in ("missing label", "nan embeddings"):
        arrays = read_split(emb, "test")
        if fault == "missing label":
            task = next(k for k in arrays if k.startswith("label_"))
            del arrays[task]
            expect = f"test.npz has no labels of task '{task.removeprefix('label_')}'"
        else:
            arrays["window_embeddings"][3] = np.nan
            expect = "test.npz: 1 of .* window embeddings are not finite"
        np.savez(emb / "test.npz", **arrays)
    elif fault == "unknown task":
        tasks, expect = ["--tasks", "nope"], r"unknown task\(s\) \['nope'\]"
    else:
        emb, expect = tmp_path / "missing", "has no embeddings.json"
    with pytest.raises((EmbeddingsError, ConfigError), match=expect):
        probe_all(emb, tasks[1:] or None)
    if fault not in ("truncated npz", "unknown task"):
        return  # the command prints what probe_all raises; one launch shows it
    r = _cli("probe", "--embeddings", str(emb), "--out", str(tmp_path / "p"), *tasks)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and re.search(expect, r.stderr)
