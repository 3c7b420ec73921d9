"""`jaxmusic bench --suite FILE --out DIR`: measure embedders on datasets under protocols.

Order of work: load the suite and check all of it (every dataset has labels, every
task exists, every embedder can be built, every protocol can run) before anything is
computed; then one job per (embedder, dataset, task, protocol), grouped by embedder so
that each encoder is restored once. Embeddings are extracted once per (embedder,
dataset, split, perturbation) into OUT/embeddings (evaluate/extract.py: streamed,
resumable, cached); each finished job is written to OUT/jobs/ at once, so a re-run
skips it and a killed bench loses at most the job in progress; a job that fails is
reported (OUT/jobs/*.failed.json and the summary) while the others still run, and is
retried by the next run. Finally OUT/results.json, results.csv, report.md and the
plots are written from every job on disk (evaluate/report.py).

The language protocol (evaluate/language.py) needs the whole audio-text model, not
embeddings: for each checkpoint or train embedder trained with a language objective
and each dataset, one `retrieval` job (text-to-audio and audio-to-text cells) and one
zero-shot job per class or tag task, on `protocols.language.split`; the model and
the split's clip features are computed once per embedder and dataset.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from tqdm import tqdm

from jaxmusic import config as config_lib
from jaxmusic.config import ConfigError
from jaxmusic.data import records
from jaxmusic.data.sources import read_manifest
from jaxmusic.evaluate import embedders as embedders_lib
from jaxmusic.evaluate import protocols, report
from jaxmusic.evaluate import suite as suite_lib
from jaxmusic.evaluate.external import ExternalEmbeddings
from jaxmusic.evaluate.extract import CLEAN, Perturbation, extract, load, split_labels
from jaxmusic.evaluate.probe import Split
from jaxmusic.evaluate.suite import SPLITS, Job
from jaxmusic.prepare.synthetic import prepare_synth


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


class Bench:
    """One suite run into one output folder (see the module docstring)."""

    def __init__(self, suite: ml_collections.ConfigDict, out: str | Path) -> None:
        self.suite = suite
        self.out = Path(out)
        self.progress = bool(suite.progress_bar)
        self.probe = suite_lib.probe_config(suite)
        suite_lib.check_protocols(suite)
        self.protocols = suite_lib.enabled(suite)
        self._encoders: dict[str, Any] = {}
        self._language_models: dict[str, Any] = {}  # embedder -> (config, language.Scorer)
        self._language_splits: dict[tuple[str, str], Any] = {}  # (embedder, dataset) -> SplitFeatures
        self._labels: dict[tuple[str, str], tuple[list[str], dict[str, np.ndarray]]] = {}

    # ------------------------------------------------------------------ checks, plan

    def _datasets(self) -> dict[str, dict[str, Any]]:
        """Every dataset's manifest (synthetic ones prepared first), refused without labels."""
        manifests = {}
        for name, d in self.suite.datasets.items():
            path = suite_lib.dataset_dir(self.suite, name, self.out)
            if not d.dir:
                prepare_synth(path, progress=self.progress, **d.synth.to_dict())
            try:
                manifest = read_manifest(str(path))
            except (FileNotFoundError, records.RecordError):
                raise ConfigError(
                    f"dataset {name}: no prepared dataset at {path} (prepare it with `jaxmusic prepare`)"
                ) from None
            if not manifest["tasks"]:
                raise ConfigError(
                    f"dataset {name} ({path}) has no labels: prepare it with --labels, or leave it out of the suite"
                )
            unknown = [t for t in d.tasks if t not in manifest["tasks"]]
            if unknown:
                raise ConfigError(
                    f"dataset {name} has no task {unknown[0]!r}; it has {sorted(manifest['tasks'])}"
                )
            missing = [s for s in SPLITS if not manifest["splits"].get(s, {}).get("clips")]
            if missing:
                raise ConfigError(f"dataset {name} ({path}) has no clips in split {missing[0]!r}")
            manifests[name] = manifest
        if not manifests:
            raise ConfigError("the suite lists no datasets")
        return manifests

    def _check_embedder(self, name: str, e: ml_collections.ConfigDict) -> None:
        kind = e.get("kind")
        if kind not in suite_lib.KINDS:
            raise ConfigError(f"embedder {name}: kind must be one of {sorted(suite_lib.KINDS)}, got {kind!r}")
        unknown = sorted(set(e) - {"kind", *suite_lib.KINDS[kind]})
        if unknown:
            raise ConfigError(
                f"embedder {name}: {kind} embedders take {sorted(suite_lib.KINDS[kind])}, not {unknown}"
            )
        if kind == "checkpoint":
            embedders_lib.workdir_config(e.workdir)  # refuses a folder that is not a workdir
        elif kind in ("random_init", "train"):
            self._encoder_config(name, e)
            if kind == "train" and e.data not in self.suite.datasets:
                raise ConfigError(f"embedder {name}: data {e.data!r} is not one of the suite's datasets")
        elif kind == "handcrafted":
            from jaxmusic.evaluate.handcrafted import FEATURES

            bad = [f for f in e.features if f not in FEATURES]
            if bad or not e.features:
                raise ConfigError(
                    f"embedder {name}: features must be among {sorted(FEATURES)}, got {list(e.features)}"
                )
        elif kind == "external":
            for dataset, folder in e.folders.items():
                if dataset not in self.suite.datasets:
                    raise ConfigError(
                        f"embedder {name}: folders names dataset {dataset!r}, not one of the suite's"
                    )
                ExternalEmbeddings(folder, name).check(list(SPLITS))

    def _encoder_config(self, name: str, e: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
        try:
            return config_lib.load(
                e.config, [f"--config.{o}" for o in e.overrides] if "overrides" in e else []
            )
        except ConfigError as err:
            raise ConfigError(f"embedder {name}: {err}") from None

    def plan(self) -> list[Job]:
        """Every job of the suite, after checking all of it."""
        manifests = self._datasets()
        for name, e in self.suite.embedders.items():
            self._check_embedder(name, e)
        ld = self.suite.protocols.limited_data
        if ld.budgets:
            self._encoder_config("limited_data", ld)
        jobs = []
        for name, e in self.suite.embedders.items():
            datasets = list(e.folders) if e.kind == "external" else list(self.suite.datasets)
            language = "language" in self.protocols and self._is_language(name, e)
            for dataset in datasets:
                if "language" in self.protocols and suite_lib.applies(
                    "language", suite_lib.RETRIEVAL, e.kind, language
                ) is None:  # fmt: skip
                    jobs.append(Job(name, dataset, suite_lib.RETRIEVAL, "language"))
                tasks = self.suite.datasets[dataset].tasks or tuple(manifests[dataset]["tasks"])
                for task in tasks:
                    kind = manifests[dataset]["tasks"][task]["kind"]
                    for protocol in self.protocols:
                        if (
                            protocol != "limited_data"
                            and suite_lib.applies(protocol, kind, e.kind, language) is None
                        ):
                            jobs.append(Job(name, dataset, task, protocol))
        for budget in ld.budgets:
            for task in self.suite.datasets[ld.data].tasks or tuple(manifests[ld.data]["tasks"]):
                jobs.append(Job(f"limited_data@{budget}", ld.data, task, "limited_data"))
        if not jobs:
            raise ConfigError("the suite has no job: list embedders, datasets and at least one protocol")
        return jobs

    def _is_language(self, name: str, e: ml_collections.ConfigDict) -> bool:
        """Whether a checkpoint or train embedder's run has a language objective."""
        from jaxmusic.evaluate.language import is_language_config

        if e.kind == "checkpoint":
            return is_language_config(embedders_lib.workdir_config(e.workdir))
        return e.kind == "train" and is_language_config(self._encoder_config(name, e))

    # ------------------------------------------------------------------ embedders

    def _train(self, name: str, e: ml_collections.ConfigDict, dataset: str, budget: str = "full") -> Path:
        """Train (or resume, or find finished) a suite-trained encoder under OUT/train."""
        from jaxmusic.train.trainer import train_and_evaluate

        config = self._encoder_config(name, e)
        config.data.dir = str(suite_lib.dataset_dir(self.suite, dataset, self.out).absolute())
        config.data.budget = budget
        config.progress_bar = self.progress
        workdir = self.out / "train" / _slug(name)
        train_and_evaluate(config, workdir)
        return workdir

    def embedder(self, name: str, dataset: str) -> Any:
        """The embedder `name` for `dataset`. An encoder does not depend on the dataset,
        so it is restored (or trained) and compiled once for all of them; handcrafted
        features take each dataset's sample rate, external embeddings are per dataset."""
        per_dataset = not name.startswith("limited_data@") and self.suite.embedders[name].kind in (
            "handcrafted", "external",
        )  # fmt: skip
        key = (name, dataset if per_dataset else "")
        if key in self._encoders:
            return self._encoders[key]
        batch = self.suite.embed_batch_size
        if name.startswith("limited_data@"):
            ld = self.suite.protocols.limited_data
            workdir = self._train(name, ld, ld.data, budget=name.partition("@")[2])
            made = embedders_lib.from_checkpoint(workdir, ld.layer, batch, _slug(name))
        else:
            e = self.suite.embedders[name]
            if e.kind == "checkpoint":
                made = embedders_lib.from_checkpoint(e.workdir, e.layer, batch, name)
            elif e.kind == "train":
                made = embedders_lib.from_checkpoint(self._train(name, e, e.data), e.layer, batch, name)
            elif e.kind == "random_init":
                made = embedders_lib.random_init(self._encoder_config(name, e), e.seed, e.layer, batch, name)
            elif e.kind == "handcrafted":
                from jaxmusic.evaluate.handcrafted import HandcraftedEmbedder

                rate = read_manifest(str(suite_lib.dataset_dir(self.suite, dataset, self.out)))["sample_rate"]
                made = HandcraftedEmbedder(
                    e.features,
                    rate,
                    round(e.window_seconds * rate),
                    workers=self.suite.workers,
                    progress=self.progress,
                )
                made.name = name
            else:
                made = ExternalEmbeddings(e.folders[dataset], name)
        self._encoders[key] = made
        return made

    # ------------------------------------------------------------------ embeddings

    def labels(self, dataset: str, split: str) -> tuple[list[str], dict[str, np.ndarray]]:
        key = (dataset, split)
        if key not in self._labels:
            self._labels[key] = split_labels(suite_lib.dataset_dir(self.suite, dataset, self.out), split)
        return self._labels[key]

    def split(self, job: Job, split: str, perturbation: Perturbation = CLEAN) -> Split:
        """One split of a job's task, embedded by the job's embedder."""
        ids, labels = self.labels(job.dataset, split)
        made = self.embedder(job.embedder, job.dataset)
        if isinstance(made, ExternalEmbeddings):
            arrays = made.split(split, ids)
        else:
            data_dir = suite_lib.dataset_dir(self.suite, job.dataset, self.out)
            folder = extract(made, data_dir, split, self.out / "embeddings", perturbation, self.progress)
            arrays = load(folder)
        return Split(np.asarray(arrays["window_embeddings"]), arrays["window_clip"], labels[job.task])

    def task_data(self, job: Job) -> protocols.TaskData:
        manifest = read_manifest(str(suite_lib.dataset_dir(self.suite, job.dataset, self.out)))
        splits = {s: self.split(job, s) for s in SPLITS}
        return protocols.TaskData(
            job.task, manifest["tasks"][job.task], splits["train"], splits["valid"], splits["test"],
            self.labels(job.dataset, "test")[0],
        ).checked()  # fmt: skip

    # ------------------------------------------------------------------ jobs

    def language_job(self, job: Job) -> list[dict[str, Any]]:
        """Retrieval or one task's zero-shot cells of a language run (evaluate/language.py)."""
        from jaxmusic.evaluate import language

        p, n_boot, seed = self.suite.protocols.language, self.suite.bootstrap, self.suite.seed
        if job.embedder not in self._language_models:
            e = self.suite.embedders[job.embedder]
            workdir = e.workdir if e.kind == "checkpoint" else self._train(job.embedder, e, e.data)
            config, objective, variables = language.load_language_model(workdir)
            scorer = language.Scorer(objective, variables, self.suite.embed_batch_size)
            self._language_models[job.embedder] = (config, scorer)
        config, scorer = self._language_models[job.embedder]
        data_dir = str(suite_lib.dataset_dir(self.suite, job.dataset, self.out))
        key = (job.embedder, job.dataset)
        if key not in self._language_splits:
            language.check_sample_rate(config, data_dir, job.embedder)
            self._language_splits[key] = language.split_features(
                scorer, data_dir, p.split, int(config.data.crop_samples), self.progress
            )
        feats = self._language_splits[key]
        if job.task == suite_lib.RETRIEVAL:
            return language.retrieval(scorer, feats, n_boot, seed)
        task = read_manifest(data_dir)["tasks"][job.task]
        return [language.zero_shot(scorer, feats, job.task, task, p.prompt, n_boot, seed)]

    def run_job(self, job: Job) -> list[dict[str, Any]]:
        """The cells of one job."""
        if job.protocol == "language":
            return self.language_job(job)
        s, p, n_boot, seed = self.suite, self.suite.protocols, self.suite.bootstrap, self.suite.seed
        td = self.task_data(job)
        if job.protocol == "full":
            return protocols.full(td, self.probe, n_boot, seed)
        if job.protocol == "label_limited":
            return protocols.label_limited(td, self.probe, p.label_limited.fractions, n_boot, seed)
        if job.protocol == "few_shot":
            fs = p.few_shot
            return protocols.few_shot(td, self.probe, fs.n_tags, fs.k_shots, fs.episodes, n_boot, fs.seed)
        if job.protocol == "knn":
            return protocols.knn(td, p.knn.k, n_boot, seed)
        if job.protocol == "centroid":
            return protocols.centroid(td, n_boot, seed)
        if job.protocol == "noise":
            variants = [
                (
                    {"snr_db": float(v), "gain_db": 0.0},
                    Perturbation(None if np.isinf(v) else float(v), 0.0, p.noise.seed),
                )
                for v in p.noise.snr_db
            ]
            variants += [
                ({"snr_db": float("inf"), "gain_db": float(g)}, Perturbation(None, float(g), p.noise.seed))
                for g in p.noise.gain_db
            ]
            perturbed = {
                f"snr{v['snr_db']}-gain{v['gain_db']}": (v, self.split(job, "test", pert))
                for v, pert in variants
            }
            return protocols.noise(td, perturbed, self.probe, n_boot, seed)
        if job.protocol == "limited_data":
            budget = job.embedder.partition("@")[2]
            cells = protocols.full(td, self.probe, n_boot, seed)
            workdir = self.out / "train" / _slug(job.embedder)
            chosen = workdir / "budget.json"
            minutes = json.loads(chosen.read_text())["minutes"] if chosen.is_file() else None
            if minutes is None:  # the full split: its minutes from the dataset's index
                from jaxmusic.data.subsets import split_index

                data_dir = suite_lib.dataset_dir(s, job.dataset, self.out)
                minutes = round(sum(c["seconds"] for c in split_index(data_dir, "train")) / 60.0, 3)
            for c in cells:
                c["variant"] = {"budget": budget, "minutes": minutes}
            return cells
        raise AssertionError(job.protocol)

    def _job_file(self, job: Job, failed: bool = False) -> Path:
        return self.out / "jobs" / f"{_slug(job.id)}{'.failed' if failed else ''}.json"

    def _write_job(self, job: Job, cells: list[dict[str, Any]], seconds: float) -> None:
        stored = []
        for i, produced in enumerate(cells):
            cell = dict(produced)
            predictions = cell.pop("predictions", None)
            if predictions is not None:
                path = self.out / "predictions" / f"{_slug(job.id)}-{i}.npz"
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".partial.npz")
                np.savez(tmp, **{k: np.asarray(v) for k, v in predictions.items()})
                tmp.replace(path)
                cell["predictions"] = str(path.relative_to(self.out))
            stored.append(
                {
                    "embedder": job.embedder,
                    "dataset": job.dataset,
                    "task": job.task,
                    "protocol": job.protocol,
                    **cell,
                }
            )
        self._job_file(job).parent.mkdir(parents=True, exist_ok=True)
        records.write_json_atomic(
            self._job_file(job), {"job": job.id, "seconds": round(seconds, 2), "cells": stored}
        )
        self._job_file(job, failed=True).unlink(missing_ok=True)

    def run(self) -> dict[str, Any]:
        """Run every job not already on disk, then write the results and the report."""
        jobs = self.plan()
        todo = [j for j in jobs if not self._job_file(j).is_file()]
        failures = {}
        bar = tqdm(
            total=len(jobs), initial=len(jobs) - len(todo), desc="bench jobs", disable=not self.progress
        )
        for job in todo:
            start = time.time()
            try:
                cells = self.run_job(job)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failing job must not cost the others
                failures[job.id] = f"{type(e).__name__}: {e}"
                self._job_file(job).parent.mkdir(parents=True, exist_ok=True)
                records.write_json_atomic(
                    self._job_file(job, failed=True),
                    {"job": job.id, "error": failures[job.id], "traceback": traceback.format_exc()},
                )
                tqdm.write(f"bench: job {job.id} failed: {failures[job.id]}")
            else:
                self._write_job(job, cells, time.time() - start)
            bar.update(1)
        bar.close()
        cells = []
        for job in jobs:
            if self._job_file(job).is_file():
                cells += json.loads(self._job_file(job).read_text())["cells"]
        results = {"suite": self.suite.to_dict(), "cells": cells, "failed": failures, "jobs": len(jobs)}
        report.write_bench_report(results, self.out)
        return results


def bench(suite_spec: str, out: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """Load a suite and run it into `out` (see the module docstring)."""
    return Bench(suite_lib.load(suite_spec, overrides), out).run()
