"""`jaxmusic quickstart`: the whole spine on built-in synthetic music, offline, on a CPU.

Prepare synthetic clips -> contrastive pre-training -> embed with the trained encoder
and with the same encoder at random initialisation -> a linear probe per task ->
one table comparing the two, and `WORKDIR/results.json`.
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections

from jaxmusic.data.prepare import ensure_dataset
from jaxmusic.data.records import write_json_atomic
from jaxmusic.evaluate.embed import write_embeddings
from jaxmusic.evaluate.probe import ProbeConfig
from jaxmusic.evaluate.report import markdown_table, probe_all
from jaxmusic.train.trainer import train_and_evaluate


def quickstart(workdir: str | Path, config: ml_collections.ConfigDict, seed: int = 0) -> dict:
    """Run everything under `workdir`; returns {"tasks": {task: {metric, random_init, trained}}}."""
    workdir = Path(workdir)
    start = time.time()
    config = ml_collections.ConfigDict(config.to_dict())
    config.seed = seed
    config.data.shuffle_seed = seed
    config = ensure_dataset(config, workdir)
    train_dir = workdir / "train"
    train_and_evaluate(config, train_dir)
    probe_config = ProbeConfig(
        learning_rate=config.probe.learning_rate,
        weight_decay=config.probe.weight_decay,
        batch_size=config.probe.batch_size,
        max_epochs=config.probe.max_epochs,
        patience=config.probe.patience,
        seed=seed,
    )
    scores = {}
    for name, source in (("random_init", None), ("trained", train_dir)):
        emb = write_embeddings(
            config, source, workdir / "embeddings" / name, seed=seed, progress=config.progress_bar
        )
        scores[name] = probe_all(emb, config=probe_config)
    tasks = {
        task: {
            "metric": scores["trained"][task]["metric"],
            "random_init": scores["random_init"][task]["value"],
            "trained": scores["trained"][task]["value"],
        }
        for task in scores["trained"]
    }
    result = {"tasks": tasks, "seed": seed, "seconds": round(time.time() - start, 1)}
    write_json_atomic(workdir / "results.json", result)
    print(
        markdown_table(
            ["task", "metric", "random-init", "trained"],
            [[t, r["metric"], r["random_init"], r["trained"]] for t, r in tasks.items()],
        )
    )
    print(f"\n{result['seconds']:.0f} s; results in {workdir / 'results.json'}")
    return result
