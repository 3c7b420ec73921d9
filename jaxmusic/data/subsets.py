"""Limited-data training subsets: nested, deterministic, chosen by seed.

Two schemes, both nested (a smaller budget is always a subset of a larger one with the
same seed) and independent of how the dataset was sharded:

- `minutes:M` — the shortest prefix of a seeded permutation of the split whose audio
  adds up to at least M minutes (5, 10, 25, 50, 100, 250, 500, ...). `full` is the
  whole split.
- `per_class:TASK:K` — the limited-data paper's scheme (Plachouras et al. 2025): among
  the clips carrying exactly one of the listed classes of a multi-label TASK, K clips per
  class, the first K of a seeded permutation of each class's clips. With MagnaTagATune's
  top-50 tags and the ten genres (`MTAT_GENRES`), K in 1..100 gives about 5 to 500 minutes.

A subset is computed from a per-clip index of the split (id, length, labels), built by
reading record headers once and cached beside the shards.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxmusic.data import records
from jaxmusic.data.sources import open_split, read_manifest

MTAT_GENRES = (
    "classical", "techno", "electronic", "rock", "indian", "opera", "pop", "new age", "country", "choral",
)  # fmt: skip


def split_index(data_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """Per clip of a split, in record order: {"id", "seconds", "labels"}; cached in DATA/index-SPLIT.json."""
    cache = Path(data_dir) / f"index-{split}.json"
    manifest = read_manifest(str(data_dir))
    if cache.is_file():
        index = json.loads(cache.read_text())
        if len(index) == manifest["splits"][split]["clips"]:
            return index
    source = open_split(str(data_dir), split)
    index = []
    chunked = isinstance(source, records.SplitReader) and source.chunked
    for i in range(len(source)):
        # A chunked split reads headers alone, not every track's audio.
        header = source.header(i) if chunked else records.decode_header(source[i])[0]
        index.append(
            {
                "id": header["id"],
                "seconds": header["num_samples"] / header["sample_rate"],
                "labels": header["labels"],
            }
        )
    with contextlib.suppress(OSError):  # a read-only dataset folder goes without the cache
        records.write_json_atomic(cache, index)
    return index


def _minutes(index: list[dict[str, Any]], minutes: float, seed: int) -> list[int]:
    order = np.random.default_rng(seed).permutation(len(index))
    total, chosen = 0.0, []
    for i in order:
        if total >= minutes * 60.0:
            break
        chosen.append(int(i))
        total += index[i]["seconds"]
    if total < minutes * 60.0:
        raise ValueError(
            f"budget minutes:{minutes:g} exceeds the split's {total / 60:.1f} minutes: use a smaller one or 'full'"
        )
    return sorted(chosen)


def _per_class(
    index: list[dict[str, Any]], task: dict[str, Any], task_name: str, classes: list[str], k: int, seed: int
) -> list[int]:
    if task["kind"] != "multi":
        raise ValueError(f"per_class budgets need a multi-label task; '{task_name}' is {task['kind']}")
    unknown = [c for c in classes if c not in task["classes"]]
    if unknown:
        raise ValueError(f"classes {unknown} are not in task '{task_name}'")
    wanted = {task["classes"].index(c) for c in classes}
    by_class: dict[int, list[int]] = {c: [] for c in sorted(wanted)}
    for i, clip in enumerate(index):
        hits = wanted.intersection(clip["labels"][task_name])
        if len(hits) == 1:  # single-genre clips only, as the paper selects
            by_class[hits.pop()].append(i)
    chosen = []
    for c, members in by_class.items():
        if len(members) < k:
            raise ValueError(
                f"class '{task['classes'][c]}' has {len(members)} single-class clips, fewer than K={k}"
            )
        # One generator per class, seeded by (seed, class): class c's picks do not depend on others.
        order = np.random.default_rng([seed, c]).permutation(len(members))
        chosen += [members[j] for j in order[:k]]
    return sorted(chosen)


def select(
    data_dir: str | Path, split: str, budget: str, seed: int, classes: tuple[str, ...] = MTAT_GENRES
) -> dict[str, Any]:
    """Indices (record order) of the budget's clips, with what was chosen, for the run's records.

    `budget` is "full", "minutes:M" or "per_class:TASK:K" (see the module docstring).
    """
    index = split_index(data_dir, split)
    kind, _, arg = budget.partition(":")
    if kind == "full" and not arg:
        chosen = list(range(len(index)))
    elif kind == "minutes":
        try:
            minutes = float(arg)
        except ValueError:
            raise ValueError(f"budget '{budget}': expected minutes:NUMBER") from None
        chosen = _minutes(index, minutes, seed)
    elif kind == "per_class":
        task_name, _, k = arg.partition(":")
        tasks = read_manifest(str(data_dir))["tasks"]
        if task_name not in tasks or not k.isdigit():
            raise ValueError(f"budget '{budget}': expected per_class:TASK:K with TASK in {list(tasks)}")
        chosen = _per_class(index, tasks[task_name], task_name, list(classes), int(k), seed)
    else:
        raise ValueError(f"unknown budget '{budget}' (use full, minutes:M or per_class:TASK:K)")
    return {
        "budget": budget,
        "seed": seed,
        "split": split,
        "clips": len(chosen),
        "minutes": round(sum(index[i]["seconds"] for i in chosen) / 60.0, 3),
        "indices": chosen,
        "ids": [index[i]["id"] for i in chosen],
    }
