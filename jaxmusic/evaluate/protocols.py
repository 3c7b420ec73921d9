"""The measurement protocols of the papers, on one task's embeddings.

Each protocol takes a `TaskData` (train/valid/test splits of window embeddings and
clip labels for one task) and returns cells: one figure each, with a 95 % confidence
interval from a bootstrap over test clips, the test-set size, the chance level (the
majority class, the train tag frequencies, the train mean) and the predictions.

- `full`: a probe grid on the whole training split (CLMR, MARBLE).
- `label_limited`: the same probe trained on a fraction of the labelled clips (CLMR
  reports 1 % and 10 %); the subset is nested across fractions and fixed by seed.
- `few_shot`: Ma & Lerch's N tags x K clips episodes with a linear probe, for tag
  tasks; N-way K-shot nearest centroid for class tasks (evaluate/fewshot.py).
  Figures are the mean over episodes; `seeds` holds every episode's.
- `knn`, `centroid`: the training-free probes (evaluate/neighbours.py).
- `noise`: the full-data probe, trained on clean audio, tested on perturbed test audio
  (the perturbed embeddings come from the caller: evaluate/extract.py `Perturbation`).

Limited-data pre-training and paradigm comparisons are suites of embedders measured
by these protocols (evaluate/bench.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxmusic import metrics
from jaxmusic.evaluate import fewshot, neighbours
from jaxmusic.evaluate.probe import (
    PRIMARY,
    FitData,
    ProbeConfig,
    ProbeOutcome,
    Split,
    Standardizer,
    check_split,
    fit_episodes,
    predict_clips,
    probe,
    spec_for,
    task_outputs,
)

Cell = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TaskData:
    """One task of one dataset, embedded by one embedder."""

    name: str
    task: Mapping[str, Any]  # the manifest's task entry
    train: Split
    valid: Split
    test: Split
    test_ids: Sequence[str]

    @property
    def kind(self) -> str:
        return task_outputs(self.task)[0]

    @property
    def n_out(self) -> int:
        return task_outputs(self.task)[1]

    def checked(self) -> TaskData:
        kind, n = self.kind, self.n_out
        train = check_split("train", self.train, kind, n, None)
        dim = train.window_embeddings.shape[1]
        return dataclasses.replace(
            self, train=train, valid=check_split("valid", self.valid, kind, n, dim),
            test=check_split("test", self.test, kind, n, dim),
        )  # fmt: skip


# ----------------------------------------------------------------------------- metrics


def metric_functions(
    kind: str, classes: Sequence[str]
) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The figures reported for a task kind, each `f(labels, clip_scores) -> float`."""
    if kind == "multi":
        return {"roc_auc": metrics.macro_roc_auc, "pr_auc": metrics.macro_average_precision}
    if kind == "single":
        out = {"accuracy": metrics.accuracy}
        if classes and metrics.is_key_vocabulary(classes):
            names = np.asarray(classes)
            out["mirex_key"] = lambda y, s: metrics.mirex_key_score(names[y], names[np.argmax(s, axis=1)])
        return out
    return {"r2": metrics.r2, "mae": lambda y, s: float(np.mean(np.abs(y - s)))}


def _chance_scores(kind: str, n_out: int, train_labels: np.ndarray, n: int) -> np.ndarray:
    """The predictions of a model that ignores the audio."""
    if kind == "multi":
        return np.tile(train_labels.mean(0), (n, 1))
    if kind == "single":
        return np.tile(np.eye(n_out)[np.bincount(train_labels, minlength=n_out).argmax()], (n, 1))
    return np.full(n, float(train_labels.mean()))


def _value(fn: Callable[..., float], *args: np.ndarray) -> float:
    try:
        return float(fn(*args))
    except ValueError:  # undefined on these clips (e.g. no tag with a negative)
        return math.nan


def score(
    td: TaskData,
    labels: np.ndarray,
    clip_scores: np.ndarray,
    train_labels: np.ndarray,
    n_boot: int,
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> Cell:
    """Every figure of one set of test predictions, with its bootstrap interval and chance."""  # fmt: skip
    kind, n_out = td.kind, td.n_out
    classes = list(classes if classes is not None else td.task.get("classes") or ())
    fns = metric_functions(kind, classes)
    chance = _chance_scores(kind, len(classes) or n_out, train_labels, labels.shape[0])
    figures = {}
    for name, fn in fns.items():
        low, high = (
            metrics.bootstrap_ci(fn, labels, clip_scores, n_boot=n_boot, seed=seed)
            if n_boot > 1
            else (math.nan, math.nan)
        )
        figures[name] = {
            "value": _value(fn, labels, clip_scores),
            "ci_low": float(low),
            "ci_high": float(high),
        }
    cell: Cell = {
        "kind": kind,
        "metric": PRIMARY[kind],
        "metrics": figures,
        "n_test": int(labels.shape[0]),
        "chance": {name: _value(fn, labels, chance) for name, fn in fns.items()},
    }
    if kind == "single" and len(classes) <= 50:
        pred = np.argmax(clip_scores, axis=1)
        confusion = np.zeros((len(classes), len(classes)), np.int64)
        np.add.at(confusion, (labels, pred), 1)
        cell["confusion"] = {"classes": classes, "counts": confusion.tolist()}
    return cell


def _outcome_cell(
    td: TaskData, out: ProbeOutcome, n_boot: int, seed: int, variant: Mapping[str, Any]
) -> Cell:
    cell = score(td, out.test_labels, out.test_scores, td.train.labels, n_boot, seed)
    cell.update(
        variant=dict(variant),
        probe={"setting": out.setting, "best_epoch": out.best_epoch, "epochs": out.epochs, "grid_valid": out.grid_valid,
               "valid": out.valid_metrics},
        predictions={"clip_ids": np.asarray(td.test_ids), "labels": out.test_labels, "scores": out.test_scores},
    )  # fmt: skip
    if len(out.seed_values) > 1:
        cell["seeds"] = _spread(out.seed_values)
    return cell


def _spread(values: Sequence[float]) -> dict[str, Any]:
    finite = [v for v in values if not math.isnan(v)]
    mean, std = metrics.mean_std(finite) if finite else (math.nan, math.nan)
    return {"mean": mean, "std": std, "values": [float(v) for v in values]}


# --------------------------------------------------------------------------- protocols


def full(td: TaskData, config: ProbeConfig, n_boot: int, seed: int = 0) -> list[Cell]:
    """The probe grid on the whole training split."""
    out = probe(td.task, td.train, td.valid, td.test, config)
    return [_outcome_cell(td, out, n_boot, seed, {})]


def label_limited(
    td: TaskData, config: ProbeConfig, fractions: Sequence[float], n_boot: int, seed: int = 0
) -> list[Cell]:
    """The probe trained on `fraction` of the labelled training clips (nested subsets)."""
    n = td.train.labels.shape[0]
    order = np.random.default_rng([seed, n]).permutation(n)
    cells = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"label fractions must lie in (0, 1], got {fraction}")
        keep = np.sort(order[: max(2, round(fraction * n))])
        sub = dataclasses.replace(td, train=td.train.clips(keep))
        out = probe(sub.task, sub.train, sub.valid, sub.test, config)
        cell = _outcome_cell(sub, out, n_boot, seed, {"fraction": fraction, "train_clips": int(keep.size)})
        cells.append(cell)
    return cells


def knn(td: TaskData, k: int, n_boot: int, seed: int = 0) -> list[Cell]:
    """k-nearest-neighbour scores of the test clips (training-free)."""
    s = neighbours.knn_scores(td.kind, td.n_out, td.train, td.test, k)
    cell = score(td, td.test.labels, s, td.train.labels, n_boot, seed)
    cell.update(
        variant={"k": k},
        predictions={"clip_ids": np.asarray(td.test_ids), "labels": td.test.labels, "scores": s},
    )
    return [cell]


def centroid(td: TaskData, n_boot: int, seed: int = 0) -> list[Cell]:
    """Nearest-centroid scores of the test clips (training-free)."""
    s = neighbours.centroid_scores(td.kind, td.n_out, td.train, td.test)
    cell = score(td, td.test.labels, s, td.train.labels, n_boot, seed)
    cell.update(
        variant={}, predictions={"clip_ids": np.asarray(td.test_ids), "labels": td.test.labels, "scores": s}
    )
    return [cell]


def noise(
    td: TaskData,
    perturbed: Mapping[str, tuple[Mapping[str, Any], Split]],
    config: ProbeConfig,
    n_boot: int,
    seed: int = 0,
) -> list[Cell]:
    """The clean-trained probe on each perturbed test set: {name: (variant, split)}."""
    out = probe(td.task, td.train, td.valid, td.test, config, {name: s for name, (_, s) in perturbed.items()})
    cells = []
    for name, (variant, split) in perturbed.items():
        scores = out.extra_scores[name]
        cell = score(td, split.labels, scores, td.train.labels, n_boot, seed)
        cell.update(
            variant=dict(variant),
            probe={"setting": out.setting, "best_epoch": out.best_epoch},
            predictions={"clip_ids": np.asarray(td.test_ids), "labels": split.labels, "scores": scores},
        )
        cells.append(cell)
    return cells


def _episode_ci(
    fn: Callable[[np.ndarray, np.ndarray], float],
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    n_boot: int,
    seed: int,
) -> tuple[float, float]:
    """Interval of the episode mean, resampling every episode's test clips together."""
    if n_boot < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_boot):
        values = []
        for y, s in pairs:
            idx = rng.integers(0, y.shape[0], y.shape[0])
            values.append(_value(fn, y[idx], s[idx]))
        if not any(math.isnan(v) for v in values):
            means.append(np.mean(values))
    if len(means) < 2:
        return math.nan, math.nan
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _episode_cell(
    td: TaskData, kind: str, pairs: list[tuple[np.ndarray, np.ndarray]], variant: Mapping[str, Any], n_boot: int, seed: int,
    classes: Sequence[str],
) -> Cell:  # fmt: skip
    fns = metric_functions(kind, classes)
    figures, spread = {}, {}
    for name, fn in fns.items():
        per_episode = [_value(fn, y, s) for y, s in pairs]
        spread[name] = _spread(per_episode)
        low, high = _episode_ci(fn, pairs, n_boot, seed)
        figures[name] = {"value": spread[name]["mean"], "ci_low": low, "ci_high": high}
    # Support sets are balanced, so a class guess is right 1/N of the time on average;
    # a constant tag score gives ROC-AUC 0.5 and the tags' frequency as precision.
    chance = {}
    for name, fn in fns.items():
        if kind == "single":
            chance[name] = 1.0 / pairs[0][1].shape[1]
        else:
            chance[name] = float(np.nanmean([_value(fn, y, np.full_like(s, 0.5)) for y, s in pairs]))
    return {
        "kind": kind, "metric": PRIMARY[kind], "metrics": figures, "variant": dict(variant),
        "n_test": int(np.mean([y.shape[0] for y, _ in pairs])), "chance": chance, "seeds": spread[PRIMARY[kind]],
        "episodes": len(pairs),
    }  # fmt: skip


def _pad_rows(arrays: Sequence[np.ndarray], rows: int, fill: float = 0) -> np.ndarray:
    out = np.full((len(arrays), rows, *arrays[0].shape[1:]), fill, arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
    return out


def few_shot(
    td: TaskData,
    config: ProbeConfig,
    n_tags: Sequence[int],
    k_shots: Sequence[int],
    episodes: int,
    n_boot: int,
    seed: int = 0,
) -> list[Cell]:
    """Few-shot cells for every feasible (N, K): linear-probe episodes on a tag task
    (Ma & Lerch 2024), nearest-centroid episodes on a class task. An (N, K) the data
    cannot supply (too few tags with K clips) gives a cell with its reason in `skipped`."""
    if td.kind == "regression":
        raise ValueError("few-shot needs tags or classes; a regression task has neither")
    cells = []
    for n in n_tags:
        for k in k_shots:
            variant = {"n_tags": n, "k_shots": k} if td.kind == "multi" else {"n_ways": n, "k_shots": k}
            try:
                run = _tag_episodes if td.kind == "multi" else _class_episodes
                cells.append(run(td, config, n, k, episodes, n_boot, seed, variant))
            except ValueError as e:
                if "few-shot" not in str(e):
                    raise
                cells.append(
                    {"kind": td.kind, "metric": PRIMARY[td.kind], "variant": variant, "skipped": str(e)}
                )
    return cells


def _tag_episodes(
    td: TaskData, config: ProbeConfig, n: int, k: int, episodes: int, n_boot: int, seed: int, variant: dict
) -> Cell:
    # Statistics of the whole (unlabelled) train split: with N*K clips, per-episode
    # statistics would be noise, and standardising needs no labels.
    norm = Standardizer.fit("multi", td.train)
    drawn = [fewshot.tag_episode(td.train.labels, n, k, seed, e) for e in range(episodes)]
    parts = []
    for ep in drawn:
        train = td.train.clips(ep.train)
        valid = td.valid.clips(fewshot.episode_test(td.valid.labels, ep.classes))
        parts.append((ep, train, valid))
    n_valid = max(v.labels.shape[0] for _, _, v in parts) + 1  # + a dummy clip for padded windows
    w_max = max(t.window_clip.shape[0] for _, t, _ in parts)
    wv_max = max(v.window_clip.shape[0] for _, _, v in parts)
    data = FitData(
        x_train=jnp.asarray(_pad_rows([norm.x(t.window_embeddings) for _, t, _ in parts], w_max)),
        y_train=jnp.asarray(_pad_rows([t.labels[:, ep.classes][t.window_clip] for ep, t, _ in parts], w_max)),
        w_train=jnp.asarray(
            _pad_rows([np.ones(t.window_clip.shape[0], np.float32) for _, t, _ in parts], w_max)
        ),
        x_valid=jnp.asarray(_pad_rows([norm.x(v.window_embeddings) for _, _, v in parts], wv_max)),
        valid_clip=jnp.asarray(_pad_rows([v.window_clip for _, _, v in parts], wv_max, fill=n_valid - 1)),
        y_valid=jnp.asarray(_pad_rows([v.labels[:, ep.classes] for ep, _, v in parts], n_valid)),
        w_valid=jnp.asarray(
            _pad_rows([np.ones(v.labels.shape[0], np.float32) for _, _, v in parts], n_valid)
        ),
    )
    spec = spec_for("multi", n, n_valid, config)
    result = fit_episodes(spec, config.grid(), data)
    pairs = []
    for e, (ep, _, _) in enumerate(parts):
        best = int(np.argmax(np.nan_to_num(np.asarray(result.valid_metric[e]), nan=-np.inf)))
        params = {name: p[e, best : best + 1] for name, p in result.params.items()}
        test = td.test.clips(fewshot.episode_test(td.test.labels, ep.classes))
        x = jnp.asarray(norm.x(test.window_embeddings))
        clips = predict_clips(spec, params, x, jnp.asarray(test.window_clip), test.labels.shape[0])
        pairs.append((test.labels[:, ep.classes], np.asarray(clips[0], np.float64)))
    cell = _episode_cell(td, "multi", pairs, variant, n_boot, seed, [])
    cell["train_clips"] = n * k
    cell["tags"] = [[td.task["classes"][c] for c in ep.classes] for ep, _, _ in parts]
    return cell


def _class_episodes(
    td: TaskData, config: ProbeConfig, n: int, k: int, episodes: int, n_boot: int, seed: int, variant: dict
) -> Cell:
    del config  # nearest centroid fits nothing
    classes = list(td.task["classes"])
    pairs = []
    for e in range(episodes):
        ep = fewshot.class_episode(td.train.labels, n, k, seed, e)
        remap = np.full(len(classes), -1)
        remap[ep.classes] = np.arange(n)
        support = td.train.clips(ep.train)
        support = Split(support.window_embeddings, support.window_clip, remap[support.labels])
        test = td.test.clips(fewshot.episode_test(td.test.labels, ep.classes))
        test = Split(test.window_embeddings, test.window_clip, remap[test.labels])
        pairs.append((test.labels, neighbours.centroid_scores("single", n, support, test)))
    cell = _episode_cell(td, "single", pairs, variant, n_boot, seed, [])
    cell["train_clips"] = n * k
    cell["probe"] = {"kind": "centroid"}
    return cell
