"""`jaxmusic bench`: a suite of embedders x tasks x protocols in one command, every
output file written, figures in the report equal to results.json, finished jobs
skipped on a re-run, a failing job reported while the others run, bad suites refused
in one line before any work."""

import csv
import json
import math
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import TINY_CLI

from jaxmusic.config import ConfigError
from jaxmusic.evaluate import suite as suite_lib
from jaxmusic.evaluate.bench import Bench
from jaxmusic.evaluate.extract import split_labels
from jaxmusic.evaluate.report import variant_label

TINY_MODEL = tuple(o.removeprefix("--config.") for o in TINY_CLI if "progress_bar" not in o)


def spectrum_features(data_dir, split: str) -> tuple[list[str], np.ndarray]:
    """An embedder jaxmusic does not have (log band energies of each whole clip, in
    NumPy), as another tool would hand its embeddings over."""
    from jaxmusic.data import records
    from jaxmusic.data.sources import open_split

    source = open_split(str(data_dir), split)
    ids, rows = [], []
    for i in range(len(source)):
        rec = records.decode(source[i])
        spec = np.abs(np.fft.rfft(rec["audio"].astype(np.float32) / 32768.0)) ** 2
        rows.append(np.log(np.stack([b.mean() for b in np.array_split(spec, 16)]) + 1e-8))
        ids.append(rec["id"])
    return ids, np.stack(rows).astype(np.float32)


def write_external(data_dir, folder, broken: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        ids, x = spectrum_features(data_dir, split)
        if broken and split == "valid":
            x = x[:, :3]  # a dimension the train split does not have: fails when probed
        order = np.random.default_rng(0).permutation(len(ids))  # any row order is fine
        np.savez(folder / f"{split}.npz", clip_ids=np.asarray(ids)[order], embeddings=x[order])


def small_suite(tmp_path, data_dir):
    s = suite_lib.suite_schema()
    s.datasets = {"synth": suite_lib.dataset(str(data_dir), tasks=("tags",))}
    s.embedders = {
        "random-init": suite_lib.embedder(
            "random_init", config="configs/quickstart.py", overrides=TINY_MODEL
        ),
        "mfcc": suite_lib.embedder("handcrafted", features=("mfcc",), window_seconds=1.0),
        "spectrum": suite_lib.embedder("external", folders={"synth": str(tmp_path / "ext")}),
        "broken": suite_lib.embedder("external", folders={"synth": str(tmp_path / "broken")}),
    }
    s.protocols.few_shot.update(n_tags=(2,), k_shots=(1, 2), episodes=2)
    s.protocols.noise.update(snr_db=(math.inf, 0.0), gain_db=(-12.0,))
    s.protocols.knn.k = 3
    s.protocols.centroid.enabled = True
    s.probe.update(learning_rates=(1e-3, 1e-2), seeds=(0, 1), max_epochs=10, batch_size=16)
    s.bootstrap = 50
    s.progress_bar = False
    return s


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    from jaxmusic.prepare.synthetic import prepare_synth

    out = tmp_path_factory.mktemp("bench_synth")
    prepare_synth(out, clips=60, seed=1, sample_rate=8000, duration_s=1.0, progress=False)
    return out


@pytest.mark.slow  # a whole bench twice: run by .ci/run with -m slow
def test_bench_writes_every_file_and_skips_finished_jobs(tmp_path, bench_data) -> None:
    write_external(bench_data, tmp_path / "ext")
    write_external(bench_data, tmp_path / "broken", broken=True)
    suite = small_suite(tmp_path, bench_data)
    out = tmp_path / "out"
    results = Bench(suite, out).run()
    for name in ("results.json", "results.csv", "report.md", "few_shot.png", "noise.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    # The broken embedder's jobs failed (reported), every other job gave its cells.
    assert results["failed"] and all(job.startswith("broken/") for job in results["failed"])
    assert "broken" in (out / "report.md").read_text()
    cells = results["cells"]
    done = {(c["embedder"], c["protocol"]) for c in cells}
    for name in ("random-init", "mfcc", "spectrum"):
        for protocol in ("full", "few_shot", "knn", "centroid"):
            assert (name, protocol) in done
    assert ("random-init", "noise") in done and ("spectrum", "noise") not in done  # no audio to perturb

    # Every cell carries its interval, test size, chance and predictions.
    for c in cells:
        if "skipped" in c:
            continue
        f = c["metrics"][c["metric"]]
        assert f["ci_low"] <= f["value"] <= f["ci_high"] or math.isnan(f["ci_low"])
        assert c["n_test"] > 0 and c["metric"] in c["chance"]
    full = next(c for c in cells if c["embedder"] == "random-init" and c["protocol"] == "full")
    pred = np.load(out / full["predictions"])
    ids, labels = split_labels(bench_data, "test")
    np.testing.assert_array_equal(pred["clip_ids"], ids)
    np.testing.assert_array_equal(pred["labels"], labels["tags"])
    assert pred["scores"].shape == labels["tags"].shape
    assert full["seeds"]["values"] and len(full["seeds"]["values"]) == 2
    assert full["chance"]["roc_auc"] == pytest.approx(0.5)

    # The report's numbers are results.json's.
    report = (out / "report.md").read_text()
    for c in cells:
        if "metrics" not in c:
            continue
        f = c["metrics"][c["metric"]]
        if not math.isnan(f["value"]):
            assert f"{f['value']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]" in report
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {(r["embedder"], r["protocol"], r["variant"]) for r in rows} >= {
        (c["embedder"], c["protocol"], variant_label(c["variant"])) for c in cells if "metrics" in c
    }
    noise_cells = [c for c in cells if c["protocol"] == "noise" and c["embedder"] == "random-init"]
    assert sorted(variant_label(c["variant"]) for c in noise_cells) == ["SNR 0 dB", "clean", "gain -12 dB"]

    # Re-running computes nothing new for finished jobs and retries only the failed ones.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json") if ".failed" not in p.name}
    write_external(bench_data, tmp_path / "broken")  # fixed
    again = Bench(suite, out).run()
    assert not again["failed"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json") if p.name in stamps} == stamps
    assert len(again["cells"]) > len(cells)


def test_suite_problems_are_refused_before_any_work(tmp_path, bench_data) -> None:
    write_external(bench_data, tmp_path / "ext")
    write_external(bench_data, tmp_path / "broken")

    def refused(suite, match):
        with pytest.raises(ConfigError, match=match):
            Bench(suite, tmp_path / "out").plan()
        assert not (tmp_path / "out" / "jobs").exists()

    s = small_suite(tmp_path, bench_data)
    s.datasets.synth.tasks = ("genre",)
    refused(s, "no task 'genre'")
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(bench_data, unlabelled)
    manifest = json.loads((unlabelled / "manifest.json").read_text())
    manifest["tasks"] = {}
    (unlabelled / "manifest.json").write_text(json.dumps(manifest))
    s = small_suite(tmp_path, bench_data)
    s.datasets = {"synth": suite_lib.dataset(str(unlabelled))}
    refused(s, "has no labels")
    s = small_suite(tmp_path, bench_data)
    s.embedders.mfcc.features = ("mfcc", "zcr")
    refused(s, "features must be among")
    s = small_suite(tmp_path, bench_data)
    s.embedders["missing"] = suite_lib.embedder("checkpoint", workdir=str(tmp_path / "nowhere"))
    refused(s, "no config.json")
    s = small_suite(tmp_path, bench_data)
    s.probe.model = "svm"
    with pytest.raises(ConfigError, match="probe model"):
        Bench(s, tmp_path / "out")


def test_suite_files_and_overrides(tmp_path) -> None:
    suite = suite_lib.load("suites/few_shot.py:runlocal", ["--suite.probe.learning_rates=(0.05,0.5)"])
    assert suite_lib.probe_config(suite).learning_rates == (0.05, 0.5)  # applied, never ignored
    with pytest.raises(ConfigError, match="unknown config key 'probe.learning_rate'"):
        suite_lib.load("suites/few_shot.py:runlocal", ["--suite.probe.learning_rate=0.1"])
    with pytest.raises(ConfigError, match="look like --suite.KEY=VALUE"):
        suite_lib.load("suites/few_shot.py:runlocal", ["--config.seed=1"])
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent("""
        from jaxmusic.evaluate.suite import suite_schema
        def get_config(arg=None):
            s = suite_schema()
            s.protocols.fewshot = {"n_tags": (2,)}
            return s
    """)
    )
    with pytest.raises(ConfigError, match="unknown suite key 'protocols.fewshot'.*few_shot"):
        suite_lib.load(str(bad))


def test_bench_command_refuses_in_one_line(tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "jaxmusic.cli", "bench", "--suite", "suites/few_shot.py:runlocal", "--out",
         str(tmp_path), "--suite.datasets.synth.tasks=('genre',)", "--suite.progress_bar=False"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert re.fullmatch(
        r"jaxmusic: error: dataset synth has no task 'genre'.*\n", run.stderr.splitlines()[-1] + "\n"
    )


@pytest.mark.slow
def test_bench_command_on_a_small_synthetic_suite(tmp_path, bench_data) -> None:
    """The acceptance suite: a trained encoder and a random-init one, MFCCs and an external
    .npz embedder; two tasks; full, few-shot, noise and limited-data with two budgets."""
    write_external(bench_data, tmp_path / "ext")
    overrides = (*TINY_MODEL, "total_steps=6", "checkpoint_every_steps=6", "log_every_steps=3")
    suite_file = tmp_path / "small.py"
    suite_file.write_text(
        textwrap.dedent(f"""
        from jaxmusic.evaluate.suite import dataset, embedder, suite_schema

        def get_config(arg=None):
            s = suite_schema()
            s.datasets = {{"synth": dataset({str(bench_data)!r}, tasks=("tags", "style"))}}
            s.embedders = {{
                "trained": embedder("train", config="configs/quickstart.py", overrides={overrides!r}, data="synth"),
                "random-init": embedder("random_init", config="configs/quickstart.py", overrides={overrides!r}),
                "mfcc": embedder("handcrafted", features=("mfcc",), window_seconds=1.0),
                "spectrum": embedder("external", folders={{"synth": {str(tmp_path / "ext")!r}}}),
            }}
            s.protocols.few_shot.update(n_tags=(2,), k_shots=(1, 2), episodes=2)
            s.protocols.noise.update(snr_db=(float("inf"), 5.0), gain_db=(-12.0,))
            s.protocols.limited_data.update(config="configs/quickstart.py", overrides={overrides!r}, data="synth",
                                            budgets=("minutes:0.3", "minutes:0.6"))
            s.probe.update(learning_rates=(1e-3, 1e-2), max_epochs=10, batch_size=16)
            s.bootstrap = 50
            s.progress_bar = False
            return s
    """)
    )
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "jaxmusic.cli", "bench", "--suite", str(suite_file), "--out", str(out),
         "--suite.seed=3"], capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("results.json", "results.csv", "report.md", "few_shot.png", "noise.png", "limited_data.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["suite"]["seed"] == 3 and not results["failed"]
    cells = results["cells"]
    seen = {(c["embedder"], c["task"], c["protocol"]) for c in cells}
    for embedder in ("trained", "random-init", "mfcc", "spectrum"):
        for task in ("tags", "style"):
            for protocol in ("full", "few_shot"):
                assert (embedder, task, protocol) in seen
            assert ((embedder, task, "noise") in seen) == (embedder != "spectrum")
    limited = sorted((c["variant"]["minutes"], c["task"]) for c in cells if c["protocol"] == "limited_data")
    assert len(limited) == 4 and limited[0][0] < limited[-1][0] and limited[0][0] >= 0.3
    # The report's numbers are the ones in results.json, cell by cell.
    report = (out / "report.md").read_text()
    table_values = {float(v) for v in re.findall(r"\| (\d\.\d{3}) \[", report)}
    headline = {round(c["metrics"][c["metric"]]["value"], 3) for c in cells if "metrics" in c}
    every = {round(f["value"], 3) for c in cells if c["protocol"] == "full" for f in c["metrics"].values()}
    assert headline <= table_values <= headline | every
    # The trained encoder's checkpoint is the suite's own, under OUT/train.
    assert (out / "train" / "trained" / "checkpoints").is_dir()


@pytest.mark.parametrize("name", ["clmr_linear", "paradigms", "limited_data", "few_shot"])
def test_shipped_suites_plan_locally_and_name_their_missing_data(name, tmp_path, tmp_path_factory) -> None:
    from jaxmusic.prepare.synthetic import prepare_synth

    # The runlocal suites' synthetic music, prepared once for all four.
    shared = tmp_path_factory.getbasetemp() / "runlocal_synth"
    prepare_synth(
        shared, progress=False, **suite_lib.load("suites/few_shot.py:runlocal").datasets.synth.synth.to_dict()
    )
    overrides = ["--suite.progress_bar=False", f"--suite.datasets.synth.dir={shared}"]
    local = Bench(suite_lib.load(f"suites/{name}.py:runlocal", overrides), tmp_path / "local")
    jobs = local.plan()
    assert jobs and {j.protocol for j in jobs} == set(suite_lib.enabled(local.suite))
    paper = Bench(suite_lib.load(f"suites/{name}.py"), tmp_path / "paper")
    with pytest.raises(ConfigError, match="no prepared dataset at data/"):
        paper.plan()
