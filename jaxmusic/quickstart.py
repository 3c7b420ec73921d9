"""`jaxmusic quickstart`: the comparison the papers make, on built-in synthetic music,
offline, on a CPU.

Prepare synthetic clips -> pre-train one encoder contrastively (SimCLR) and the same
encoder supervised (on `objective.supervised.task`) -> embed every split with each,
and with the encoder at random initialisation -> a linear probe per task -> one table
with a column per paradigm, and `WORKDIR/results.json`:
`{"tasks": {TASK: {"metric", "random_init", "contrastive", "supervised", "trained"}}}`
(`trained` is the contrastive figure, under the name earlier versions used).
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections

from jaxmusic.data.records import write_json_atomic
from jaxmusic.evaluate.embed import write_embeddings
from jaxmusic.evaluate.probe import ProbeConfig
from jaxmusic.evaluate.report import markdown_table, probe_all
from jaxmusic.prepare.synthetic import ensure_dataset
from jaxmusic.train.trainer import train_and_evaluate

# Paradigm -> the objective that trains it; the encoder and the data are the same.
PARADIGMS = {"contrastive": "simclr", "supervised": "supervised"}


def quickstart(workdir: str | Path, config: ml_collections.ConfigDict, seed: int = 0) -> dict:
    """Run everything under `workdir`; returns the results (see the module docstring)."""
    workdir = Path(workdir)
    start = time.time()
    config = ml_collections.ConfigDict(config.to_dict())
    config.seed = seed
    config = ensure_dataset(config, workdir)
    sources: dict[str, Path | None] = {"random_init": None}
    for paradigm, objective in PARADIGMS.items():
        run = ml_collections.ConfigDict(config.to_dict())
        run.objective.name = objective
        train_and_evaluate(run, workdir / paradigm)
        sources[paradigm] = workdir / paradigm
    probe_config = ProbeConfig(
        learning_rates=(config.probe.learning_rate,),
        weight_decays=(config.probe.weight_decay,),
        batch_size=config.probe.batch_size,
        max_epochs=config.probe.max_epochs,
        patience=config.probe.patience,
        seeds=(seed,),
    )
    scores = {}
    for name, source in sources.items():
        emb = write_embeddings(
            config, source, workdir / "embeddings" / name, seed=seed, progress=config.progress_bar
        )
        scores[name] = probe_all(emb, config=probe_config)
    tasks = {
        task: {
            "metric": scores["random_init"][task]["metric"],
            **{name: scores[name][task]["value"] for name in sources},
            "trained": scores["contrastive"][task]["value"],
        }
        for task in scores["random_init"]
    }
    result = {
        "tasks": tasks,
        "supervised_task": config.objective.supervised.task,
        "seed": seed,
        "seconds": round(time.time() - start, 1),
    }
    write_json_atomic(workdir / "results.json", result)
    print(
        markdown_table(
            [
                "task",
                "metric",
                "random-init",
                "contrastive",
                f"supervised ({config.objective.supervised.task})",
            ],
            [[t, r["metric"], r["random_init"], r["contrastive"], r["supervised"]] for t, r in tasks.items()],
        )
    )
    print(f"\n{result['seconds']:.0f} s; results in {workdir / 'results.json'}")
    return result
