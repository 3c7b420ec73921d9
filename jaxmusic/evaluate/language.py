"""Language evaluation of an audio-text model: retrieval and zero-shot tagging.

A run trained with a language objective (`muscall`, `mulap`: any whose model scores
(clip, text) pairs, objectives/language.py) is restored whole, text tower and heads
included, with the tokenizer kept beside its checkpoint. On one split of a prepared
dataset:

- retrieval: every clip with a caption, and its caption, scored against each other
  into an [N, N] matrix; text-to-audio (each caption a query over the clips) and
  audio-to-text recall@1/5/10 and median rank (1-based), with the chance levels of
  random scores (k / N, and (N + 1) / 2). A clip's own caption is its only relevant
  text, so a caption that another clip shares verbatim counts as a miss there.
- zero-shot tagging: one text per class of a single- or multi-label task from a
  prompt template (default "a recording of {tag} music", class names as the manifest
  spells them, underscores as spaces), every clip scored against every prompt;
  macro ROC-AUC and PR-AUC (chance: 0.5 and each tag's frequency in the split) for
  tags, accuracy of the best-scoring class (chance: 1 / classes) for classes.

Each clip is heard through one window of `data.crop_samples` (the length the model
trained on) centred in it; a shorter clip fills the window from its start and is
zero-padded at the end, as `embed` pads. Intervals are 95 % bootstraps over queries
(retrieval) or clips (tagging). Everything is computed in fixed-size jitted batches
(the last padded), so each function compiles once whatever the split's size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from jaxmusic import metrics
from jaxmusic.config import ConfigError
from jaxmusic.data import records
from jaxmusic.data.pipeline import element_spec, encode_label
from jaxmusic.data.sources import open_split, read_manifest
from jaxmusic.data.tokenizer import TOKENIZER_FILE
from jaxmusic.evaluate.embedders import trained_sample_rate, workdir_config
from jaxmusic.objectives.registry import build_objective, objective_config
from jaxmusic.preprocess import dequantize
from jaxmusic.train import checkpoint

DEFAULT_PROMPT = "a recording of {tag} music"
RECALL_KS = (1, 5, 10)
DIRECTIONS = ("text-to-audio", "audio-to-text")
Cell = dict[str, Any]


class LanguageEvalError(ValueError):
    """Data a language evaluation cannot use as it is (no captions, non-finite scores)."""


# ----------------------------------------------------------------------------- the model


def language_objectives() -> list[str]:
    """Names of the objectives whose model scores texts (their sections configure a tokenizer)."""
    sections = objective_config()
    return [
        name
        for name, section in sections.items()
        if isinstance(section, ml_collections.ConfigDict) and "tokenizer" in section
    ]


def is_language_config(config: ml_collections.ConfigDict) -> bool:
    """Whether a run's config trains an audio-text model that language evaluation can score."""
    return config.objective.name in language_objectives()


def _not_language(workdir: str | Path, name: str) -> ConfigError:
    return ConfigError(
        f"{workdir} was trained with objective.name={name}, which has no text tower: language evaluation "
        f"needs an audio-text run (objective {' or '.join(language_objectives())}); measure this encoder "
        "with `jaxmusic embed` and `probe` (or `bench`) instead"
    )


def _load(workdir: str | Path) -> tuple[ml_collections.ConfigDict, Any, dict[str, Any], int]:
    config = workdir_config(workdir)
    if not is_language_config(config):
        raise _not_language(workdir, config.objective.name)
    if not (Path(workdir) / TOKENIZER_FILE).is_file():
        # Without it the objective would fit a new tokenizer, whose ids the model never saw.
        raise ConfigError(
            f"{workdir} has no {TOKENIZER_FILE}: the run's tokenizer is written beside its checkpoint; "
            "restore it there, or train the run anew"
        )
    manifest: dict[str, Any] = {}
    if config.data.dir:
        # Language objectives do not need it (the tokenizer comes from the workdir): best effort.
        with contextlib.suppress(OSError, records.RecordError):
            manifest = read_manifest(config.data.dir)
    objective = build_objective(config, manifest, Path(workdir))
    if not hasattr(objective, "pair_scores"):
        raise _not_language(workdir, config.objective.name)
    variables, step = checkpoint.restore_variables(workdir)
    spec = element_spec(objective.inputs, config.data.crop_samples, manifest)
    expected = jax.eval_shape(objective.init, jax.random.PRNGKey(0), spec)
    shapes = lambda tree: {
        jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    }
    have, want = shapes(variables), shapes(expected)
    if have != want:
        differ = sorted(k for k in have.keys() | want.keys() if have.get(k) != want.get(k))
        raise ConfigError(
            f"the model in {checkpoint.checkpoints_dir(workdir)} (step {step}) does not match its config.json "
            f"({len(differ)} arrays differ, e.g. {differ[0]}): evaluate it with the jaxmusic that trained it"
        )
    return config, objective, variables, step


def load_language_model(workdir: str | Path) -> tuple[ml_collections.ConfigDict, Any, dict[str, Any]]:
    """(config, objective, variables) of a language run: the config saved beside the
    checkpoint, the objective rebuilt from it with the workdir's tokenizer, and the whole
    model's variables of the newest restorable checkpoint, checked against the shapes
    the objective initialises. A run of another objective is one ConfigError line."""
    return _load(workdir)[:3]


def _take(tree: Any, lo: int, hi: int) -> Any:
    """Rows lo:hi of every leaf, as host arrays."""
    return jax.tree.map(lambda x: np.asarray(x)[lo:hi], tree)


def _pad(tree: Any, lo: int, size: int) -> Any:
    """Rows lo:lo+size of every leaf, the last block filled by repeating its last row (a
    repeated real row, unlike zeros, never meets an all-padding mask)."""

    def fill(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)]) if len(x) < size else x

    return jax.tree.map(fill, _take(tree, lo, lo + size))


def _rows(tree: Any) -> int:
    return int(jax.tree.leaves(tree)[0].shape[0])


def _concat(parts: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


class Scorer:
    """A language objective's three functions, jitted once for `batch_size` rows."""

    def __init__(self, objective: Any, variables: dict[str, Any], batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        self.objective, self.batch_size = objective, int(batch_size)
        self.variables = jax.device_put(variables)  # once, not with every batch
        self._audio = jax.jit(lambda v, a: objective.audio_features(v, dequantize(a)))
        self._text = jax.jit(objective.text_features)
        self._pairs = jax.jit(objective.pair_scores)

    def _batched(self, fn: Callable[..., Any], inputs: Any, n: int) -> Any:
        b, out = self.batch_size, []
        for lo in range(0, n, b):
            out.append(_take(fn(self.variables, *_pad(inputs, lo, b)), 0, min(b, n - lo)))
        return _concat(out)

    def audio_features(self, audio: np.ndarray) -> Any:
        """int16 [N, samples] -> the objective's clip features (host arrays [N, ...])."""
        return self._batched(self._audio, (np.asarray(audio, np.int16),), len(audio))

    def text_features(self, texts: Sequence[str]) -> Any:
        """Texts -> the objective's text features (host arrays [N, ...]), tokenized by the run's tokenizer."""
        ids, mask = self.objective.tokenizer.encode(list(texts), self.objective.max_tokens)
        return self._batched(self._text, (ids, mask), len(texts))

    def scores(self, audio: Any, text: Any) -> np.ndarray:
        """float32 [Na, Nt] match scores of clip features with text features, block by block."""
        b, na, nt = self.batch_size, _rows(audio), _rows(text)
        out = np.zeros((na, nt), np.float32)
        for i in range(0, na, b):
            a = _pad(audio, i, b)
            for j in range(0, nt, b):
                block = np.asarray(self._pairs(self.variables, a, _pad(text, j, b)))
                out[i : i + b, j : j + b] = block[: min(b, na - i), : min(b, nt - j)]
        if not np.isfinite(out).all():
            raise LanguageEvalError("the model's match scores are not all finite (a diverged checkpoint?)")
        return out


# ----------------------------------------------------------------------------- the data


def check_sample_rate(config: ml_collections.ConfigDict, data_dir: str, name: str) -> dict[str, Any]:
    """The dataset's manifest, if its sample rate is the one the model `name` trained at;
    else a one-line ConfigError."""
    manifest = read_manifest(data_dir)
    rate = trained_sample_rate(config)
    if rate is not None and rate != manifest["sample_rate"]:
        raise ConfigError(
            f"{name} takes {rate} Hz audio but {data_dir} is at {manifest['sample_rate']} Hz: "
            f"prepare the dataset at {rate} Hz"
        )
    return manifest


def centre_start(num_samples: int, window: int) -> int:
    """Where a window centred in a clip starts (0 for a clip shorter than the window)."""
    return max(0, (num_samples - window) // 2)


@dataclasses.dataclass(frozen=True)
class SplitFeatures:
    """One split as the model sees it: each clip's id, caption (None without), labels of
    the class and tag tasks, and features of its centred window."""

    data_dir: str
    split: str
    ids: list[str]
    captions: list[str | None]
    labels: dict[str, np.ndarray]
    audio: Any  # the objective's clip features, host arrays [N, ...]


def split_features(
    scorer: Scorer, data_dir: str, split: str, window: int, progress: bool = False
) -> SplitFeatures:
    """Read every clip of `split` once (header and centred window) and compute its features."""
    manifest = read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise ConfigError(f"{data_dir} has no split {split!r}; it has {sorted(manifest['splits'])}")
    tasks = {n: t for n, t in manifest["tasks"].items() if t["kind"] in ("single", "multi")}
    source = open_split(data_dir, split)
    if not len(source):
        raise LanguageEvalError(f"split {split!r} of {data_dir} has no clips")
    chunked = isinstance(source, records.SplitReader) and source.chunked
    ids, captions, labels, parts = [], [], {n: [] for n in tasks}, []
    batch = np.zeros((scorer.batch_size, window), np.int16)
    filled = 0
    bar = tqdm(total=len(source), desc=f"language {split}", unit="clip", disable=not progress)
    for i in range(len(source)):
        if chunked:  # reads the header and the window's chunks, not the whole track
            header = source.header(i)
            source.windows(
                i, [centre_start(header["num_samples"], window)], window, out=batch[filled : filled + 1]
            )
        else:
            record = source[i]
            header = records.decode_header(record)[0]
            audio = records.decode_audio(record)
            start = centre_start(len(audio), window)
            piece = audio[start : start + window]
            batch[filled] = 0
            batch[filled, : len(piece)] = piece
        ids.append(header["id"])
        captions.append(header.get("caption") or None)
        for name, task in tasks.items():
            labels[name].append(encode_label(task, header["labels"][name]))
        filled += 1
        if filled == scorer.batch_size or i == len(source) - 1:
            parts.append(scorer.audio_features(batch[:filled]))
            filled = 0
        bar.update(1)
    bar.close()
    return SplitFeatures(
        data_dir, split, ids, captions, {n: np.stack(v) for n, v in labels.items()}, _concat(parts)
    )


# ----------------------------------------------------------------------------- the figures


def _figure(
    fn: Callable[..., float], arrays: Sequence[np.ndarray], n_boot: int, seed: int
) -> dict[str, float]:
    value = float(fn(*arrays))
    low, high = (
        metrics.bootstrap_ci(fn, *arrays, n_boot=n_boot, seed=seed) if n_boot > 1 else (math.nan, math.nan)
    )
    return {"value": value, "ci_low": float(low), "ci_high": float(high)}


def retrieval_figures(
    similarity: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Recall@1/5/10 and median rank of the queries (rows) of a square similarity whose
    relevant item is the diagonal, each with its interval; and their chance levels."""
    n = similarity.shape[1]
    relevant = np.arange(similarity.shape[0])
    ranks = metrics.retrieval_ranks(similarity, relevant)
    figures, chance = {}, {}
    for k in RECALL_KS:
        fig = _figure(lambda r, k=k: float(np.mean(r <= k)), [ranks], n_boot, seed)
        fig["value"] = metrics.recall_at_k(similarity, relevant, k)
        figures[f"recall@{k}"], chance[f"recall@{k}"] = fig, min(k, n) / n
    fig = _figure(lambda r: float(np.median(r)), [ranks], n_boot, seed)
    fig["value"] = metrics.median_rank(similarity, relevant)
    figures["median_rank"], chance["median_rank"] = fig, (n + 1) / 2
    return figures, chance


def retrieval(scorer: Scorer, feats: SplitFeatures, n_boot: int = 1000, seed: int = 0) -> list[Cell]:
    """Text-to-audio and audio-to-text cells over the split's captioned clips; a split
    with fewer than two captions gives one cell saying why it was skipped."""
    keep = [i for i, c in enumerate(feats.captions) if c]
    if len(keep) < 2:
        why = f"split {feats.split!r} of {feats.data_dir} has {len(keep)} captioned clips: retrieval needs at least 2"
        return [{"kind": "retrieval", "metric": "recall@10", "variant": {}, "skipped": why}]
    audio = jax.tree.map(lambda x: x[np.asarray(keep)], feats.audio)
    scores = scorer.scores(audio, scorer.text_features([feats.captions[i] for i in keep]))  # clips x captions
    cells = []
    for direction, similarity in zip(DIRECTIONS, (scores.T, scores), strict=True):
        figures, chance = retrieval_figures(similarity, n_boot, seed)
        cells.append({
            "kind": "retrieval", "metric": "recall@10", "metrics": figures, "n_test": len(keep),
            "chance": chance, "variant": {"direction": direction},
        })  # fmt: skip
    return cells


def prompts(classes: Sequence[str], template: str = DEFAULT_PROMPT) -> list[str]:
    """One text per class: the template with `{tag}` as the class name, underscores as spaces."""
    return [template.format(tag=str(c).replace("_", " ")) for c in classes]


def check_prompt(template: str) -> str:
    """A prompt template whose only field is `{tag}`, or a one-line ConfigError."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError:  # an unmatched brace
        fields = []
    if not fields or set(fields) != {"tag"}:
        raise ConfigError(
            f"prompt {template!r} must hold {{tag}} (where each class name goes) and no other {{field}}"
        )
    return template


def zero_shot(
    scorer: Scorer,
    feats: SplitFeatures,
    task_name: str,
    task: dict[str, Any],
    template: str = DEFAULT_PROMPT,
    n_boot: int = 1000,
    seed: int = 0,
) -> Cell:
    """Zero-shot figures of one class or tag task: every clip scored against one prompt per class."""
    kind, classes = task["kind"], list(task.get("classes") or ())
    if kind not in ("single", "multi") or not classes:
        raise ConfigError(f"task {task_name!r} is {kind}: zero-shot tagging needs class or tag names")
    texts = prompts(classes, template)
    scores = scorer.scores(feats.audio, scorer.text_features(texts)).astype(np.float64)
    labels = feats.labels[task_name]
    if kind == "multi":
        fns = {"roc_auc": metrics.macro_roc_auc, "pr_auc": metrics.macro_average_precision}
        present = labels.sum(0) > 0  # the macro average skips tags without a positive
        chance = {
            "roc_auc": 0.5,
            "pr_auc": float(labels.mean(0)[present].mean()) if present.any() else math.nan,
        }
    else:
        fns = {"accuracy": metrics.accuracy}
        chance = {"accuracy": 1.0 / len(classes)}
    figures = {}
    for name, fn in fns.items():
        try:
            figures[name] = _figure(fn, [labels, scores], n_boot, seed)
        except ValueError:  # undefined on these clips (e.g. no tag with a negative)
            figures[name] = {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    return {
        "kind": kind, "metric": "roc_auc" if kind == "multi" else "accuracy", "metrics": figures,
        "n_test": len(feats.ids), "chance": chance, "variant": {"prompt": template}, "prompts": texts,
    }  # fmt: skip


# ----------------------------------------------------------------------------- the command


def evaluate_language(
    workdir: str | Path,
    data_dir: str | None = None,
    split: str = "test",
    prompt: str = DEFAULT_PROMPT,
    tasks: Sequence[str] | None = None,
    batch_size: int = 32,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Retrieval and zero-shot tagging of a language run on one split (see the module
    docstring), as a JSON-able dict. `data_dir` defaults to the data the run trained on
    (config.json's data.dir); `tasks` to every class and tag task of the dataset."""
    check_prompt(prompt)
    config, objective, variables, step = _load(workdir)
    data_dir = data_dir or config.data.dir
    if not data_dir:
        raise ConfigError(f"{workdir}'s config names no data.dir: pass --data PREPARED_DATASET")
    manifest = check_sample_rate(config, data_dir, str(workdir))
    known = {n: t for n, t in manifest["tasks"].items() if t["kind"] in ("single", "multi")}
    chosen = list(known) if tasks is None else list(tasks)
    for name in chosen:
        if name not in manifest["tasks"]:
            raise ConfigError(f"{data_dir} has no task {name!r}; it has {sorted(manifest['tasks'])}")
        if name not in known:
            raise ConfigError(
                f"task {name!r} is {manifest['tasks'][name]['kind']}: zero-shot needs class or tag names"
            )
    scorer = Scorer(objective, variables, batch_size)
    feats = split_features(scorer, data_dir, split, int(config.data.crop_samples), progress)
    cells = retrieval(scorer, feats, n_boot, seed)
    return {
        "workdir": str(workdir),
        "checkpoint_step": step,
        "objective": config.objective.name,
        "data_dir": str(data_dir),
        "split": split,
        "clips": len(feats.ids),
        "captioned_clips": sum(1 for c in feats.captions if c),
        "window_samples": int(config.data.crop_samples),
        "prompt": prompt,
        "retrieval": {c["variant"].get("direction", "skipped"): c for c in cells},
        "zero_shot": {t: zero_shot(scorer, feats, t, known[t], prompt, n_boot, seed) for t in chosen},
    }


def _value(f: dict[str, float]) -> str:
    fmt = lambda x: "-" if math.isnan(x) else f"{x:.3f}"
    interval = "" if math.isnan(f["ci_low"]) else f" [{fmt(f['ci_low'])}, {fmt(f['ci_high'])}]"
    return fmt(f["value"]) + interval


def markdown(results: dict[str, Any]) -> str:
    """The results of `evaluate_language` as one Markdown table, with a line saying what was measured."""
    from jaxmusic.evaluate.report import markdown_table  # matplotlib comes with it: only when printing

    rows = []
    for name, cell in results["retrieval"].items():
        if "skipped" in cell:
            rows.append(["retrieval", "-", f"skipped: {cell['skipped']}", "-", "-"])
            continue
        for metric, f in cell["metrics"].items():
            rows.append(
                [f"{name} retrieval", metric, _value(f), f"{cell['chance'][metric]:.3f}", cell["n_test"]]
            )
    for task, cell in results["zero_shot"].items():
        for metric, f in cell["metrics"].items():
            rows.append(
                [f"zero-shot {task}", metric, _value(f), f"{cell['chance'][metric]:.3f}", cell["n_test"]]
            )
    head = (
        f"Language evaluation of {results['workdir']} (step {results['checkpoint_step']}, {results['objective']}) "
        f'on split {results["split"]} of {results["data_dir"]}; prompt "{results["prompt"]}"; '
        "values with 95 % bootstrap intervals."
    )
    return head + "\n\n" + markdown_table(["evaluation", "metric", "value [95% CI]", "chance", "N"], rows)
