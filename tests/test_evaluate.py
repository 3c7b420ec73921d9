import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_CLI, start_cli, tiny_config

from jaxmusic.evaluate.embed import load_encoder_variables, read_split, write_embeddings
from jaxmusic.train.trainer import train_and_evaluate


def run_cli(*args, timeout=300):
    proc = start_cli(*args)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def test_embeddings_cover_every_window_of_every_clip(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.total_steps = 2
    train_and_evaluate(c, tmp_path / "w")
    out = write_embeddings(c, tmp_path / "w", tmp_path / "emb", progress=False)
    valid = read_split(out, "valid")
    # 6 clips of 8,000 samples -> 10 whole windows of 729 each.
    assert valid["window_embeddings"].shape == (60, 16)
    np.testing.assert_array_equal(valid["window_clip"], np.repeat(np.arange(6), 10))
    np.testing.assert_allclose(
        valid["clip_embeddings"][2], valid["window_embeddings"][20:30].mean(0), rtol=1e-6
    )
    assert valid["label_tags"].shape == (6, 12) and valid["label_key"].dtype == np.int64
    assert json.loads((out / "embeddings.json").read_text())["encoder"].endswith("step 2")
    trained, _ = load_encoder_variables(c, tmp_path / "w")
    random, _ = load_encoder_variables(c, None)
    assert not np.allclose(trained["params"]["Conv_0"]["kernel"], random["params"]["Conv_0"]["kernel"])


def test_embed_and_probe_commands(tiny_data, tmp_path):
    run_cli(
        "embed",
        "--config",
        "configs/quickstart.py",
        f"--config.data.dir={tiny_data}",
        *TINY_CLI,
        "--random-init",
        "--out",
        str(tmp_path / "emb"),
    )
    printed = run_cli("probe", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "probe"))
    results = json.loads((tmp_path / "probe" / "results.json").read_text())["tasks"]
    assert set(results) == {"style", "tags", "key", "tempo"}
    assert results["tags"]["metric"] == "roc_auc" and 0.0 <= results["tags"]["value"] <= 1.0
    assert "| style | accuracy |" in printed


@pytest.mark.slow  # minutes on 2 cores with the rest: run by .ci/run with -m slow
def test_quickstart_end_to_end(tmp_path):
    printed = run_cli(
        "quickstart",
        "--workdir",
        str(tmp_path),
        "--config",
        "configs/quickstart.py:runlocal",
        *TINY_CLI,
        "--config.synth.clips=60",
        "--config.synth.duration_s=1.0",
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["tasks"]) == {"style", "tags", "key", "tempo"}
    for task, row in results["tasks"].items():
        assert set(row) == {"metric", "random_init", "contrastive", "supervised", "trained"}, task
        assert all(np.isfinite(row[k]) for k in ("random_init", "contrastive", "supervised"))
        assert row["trained"] == row["contrastive"]  # the old name stays an alias
    assert "| task | metric | random-init | contrastive | supervised (tags) |" in printed
    for paradigm in ("contrastive", "supervised"):
        assert (tmp_path / paradigm / "checkpoints" / "20").is_dir()


@pytest.mark.slow  # trains twice: run by .ci/run with -m slow
def test_embed_takes_the_trained_runs_data_and_refuses_another_model(tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    c.total_steps = 1
    train_and_evaluate(c, tmp_path / "w")
    args = ["embed", "--config", "configs/quickstart.py", *TINY_CLI, "--workdir", str(tmp_path / "w")]
    run_cli(*args, "--out", str(tmp_path / "emb"))
    meta = json.loads((tmp_path / "emb" / "embeddings.json").read_text())
    assert meta["data_dir"] == tiny_data and meta["encoder"].endswith("step 1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxmusic.cli",
            *args,
            "--config.model.samplecnn.final_channels=32",
            "--out",
            "x",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "model differs" in proc.stderr


def _fake_embeddings(folder, tasks):
    """An `embed` folder written directly: 2 windows per clip, a learnable 'mood' tag task."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for split, n in (("train", 40), ("valid", 12), ("test", 12)):
        y = rng.integers(0, 2, (n, 2)).astype(np.float32)
        x = np.repeat(y * 3.0, 2, axis=0) + rng.normal(size=(2 * n, 2))
        arrays = {"window_embeddings": x.astype(np.float32), "window_clip": np.repeat(np.arange(n), 2)}
        if tasks:
            arrays["label_mood"] = y
        np.savez(folder / f"{split}.npz", **arrays)
    (folder / "embeddings.json").write_text(json.dumps({"tasks": tasks}))


def test_probe_command_applies_its_settings_and_refuses_bad_requests(tmp_path, capsys, monkeypatch):
    import pytest

    from jaxmusic import cli

    _fake_embeddings(tmp_path / "emb", {"mood": {"kind": "multi", "classes": ["calm", "tense"]}})
    _fake_embeddings(tmp_path / "none", {})

    def main(*args):
        monkeypatch.setattr(sys, "argv", ["jaxmusic", *args])
        with pytest.raises(SystemExit) as stop:
            cli.main()
        return stop.value.code, capsys.readouterr()

    code, printed = main("probe", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "p"),
                         "--probe.learning_rates=(0.05,)", "--probe.weight_decays=(0.001,)")  # fmt: skip
    assert code == 0
    setting = json.loads((tmp_path / "p" / "results.json").read_text())["tasks"]["mood"]["setting"]
    assert setting["learning_rate"] == 0.05 and setting["weight_decay"] == 0.001  # applied, not ignored
    for args, message in [
        (("--tasks", "genre"), "unknown task(s) ['genre']"),
        (("--config.probe.learning_rate=0.1",), "probe settings look like --probe.KEY=VALUE"),
        (("--probe.learning_rate=0.1",), "unknown config key 'learning_rate'"),
    ]:
        code, printed = main(
            "probe", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "q"), *args
        )
        assert code == 2 and message in printed.err and len(printed.err.strip().splitlines()) == 1
    code, printed = main("probe", "--embeddings", str(tmp_path / "none"), "--out", str(tmp_path / "r"))
    assert code == 2 and "without labels" in printed.err
