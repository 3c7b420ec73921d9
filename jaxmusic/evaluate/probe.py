"""Linear probe on frozen window embeddings (CLMR linear evaluation protocol).

Protocol, following CLMR (Spijkervet & Burgoyne, 2021): the encoder is frozen and
every clip is cut into windows whose embeddings were computed beforehand. A single
linear layer is trained on windows, each window inheriting its clip's label, with
Adam(W) and early stopping on the validation loss. At test time the per-window
predictions (sigmoid probabilities for multi-label tagging, softmax probabilities
for single-label classification, values for regression) are averaged over the
windows of each clip and the metric is computed per clip. A linear probe measures
how linearly accessible the information is, which is what we compare encoders on.

Features are standardised with the train split's statistics so that encoders with
very different embedding scales (e.g. random init vs trained) get the same
optimisation budget from one learning rate. The whole epoch (shuffle plus all
update steps) is one jitted ``lax.scan``, so a 200-epoch probe takes seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmusic import metrics

__all__ = [
    "ProbeConfig",
    "ProbeResult",
    "Split",
    "aggregate_clip_scores",
    "evaluate_predictions",
    "train_probe",
]

_PRIMARY = {"multi": "roc_auc", "single": "accuracy", "regression": "r2"}
_STD_FLOOR = 1e-6


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10  # early stopping on validation loss, as CLMR's linear evaluation
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    metrics: dict[str, float]  # test split, clip level
    primary_metric: str  # key of `metrics` to report/compare encoders on
    best_epoch: int  # 1-based epoch with the lowest validation loss (0: none improved)
    epochs_run: int
    valid_metrics: dict[str, float]  # validation split, clip level, best params


# eq=False: field-wise == on arrays is ambiguous; identity equality is what we want.
@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split: window embeddings [W, D], window -> clip index [W], clip labels."""

    window_embeddings: np.ndarray
    window_clip: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_dict(cls, d: Mapping[str, np.ndarray], labels_key: str = "labels") -> Split:
        """Build from the embed output dict; `labels_key` selects the task's labels."""
        return cls(
            np.asarray(d["window_embeddings"]),
            np.asarray(d["window_clip"]),
            np.asarray(d[labels_key]),
        )


def _task_info(task: Mapping) -> tuple[str, int]:
    """(kind, number of probe outputs)."""
    kind = task.get("kind")
    if kind not in _PRIMARY:
        raise ValueError(f"task kind must be one of {sorted(_PRIMARY)}, got {kind!r}")
    if kind == "regression":
        return kind, 1
    n = len(task.get("classes") or ())
    if n < (2 if kind == "single" else 1):
        raise ValueError(f"task kind {kind!r} needs a 'classes' list, got {n} classes")
    return kind, n


def _check_labels(name: str, kind: str, n_out: int, labels: np.ndarray) -> np.ndarray:
    if kind == "single":
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"{name}: single-label labels must be int [N], got {labels.dtype} {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= n_out):
            raise ValueError(f"{name}: labels must lie in [0, {n_out}) (len(classes))")
        return labels.astype(np.int32)
    if kind == "multi":
        if labels.ndim != 2 or labels.shape[1] != n_out:
            raise ValueError(
                f"{name}: multi-label labels must be [N, {n_out}] (len(classes)), got {labels.shape}"
            )
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"{name}: multi-label labels must be multi-hot 0/1")
        return labels.astype(np.float32)
    if labels.ndim != 1 or not np.isfinite(labels).all():
        raise ValueError(f"{name}: regression labels must be finite float [N], got shape {labels.shape}")
    return labels.astype(np.float64)


def _check_split(
    name: str, split: Split, kind: str, n_out: int, dim: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (embeddings float64 [W, D], window_clip int64 [W], labels)."""
    x = np.asarray(split.window_embeddings)
    clip = np.asarray(split.window_clip)
    labels = _check_labels(name, kind, n_out, np.asarray(split.labels))
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: window_embeddings must be non-empty [W, D], got {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name}: embedding dim {x.shape[1]} != train dim {dim}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: embeddings contain NaN/inf: re-run embed or check the encoder checkpoint")
    if clip.shape != (x.shape[0],) or not np.issubdtype(clip.dtype, np.integer):
        raise ValueError(f"{name}: window_clip must be int [{x.shape[0]}], got {clip.dtype} {clip.shape}")
    n = labels.shape[0]
    if clip.min() < 0 or clip.max() >= n:
        raise ValueError(f"{name}: window_clip must index the {n} clips of labels")
    empty = int((np.bincount(clip, minlength=n) == 0).sum())
    if empty:
        raise ValueError(f"{name}: {empty} of {n} clips have no windows")
    return x.astype(np.float64), clip.astype(np.int64), labels


def aggregate_clip_scores(window_scores: np.ndarray, window_clip: np.ndarray, n_clips: int) -> np.ndarray:
    """Mean of the window predictions of each clip: [W, ...] -> [n_clips, ...]."""
    scores = np.asarray(window_scores, dtype=np.float64)
    clip = np.asarray(window_clip)
    if scores.shape[:1] != clip.shape or clip.ndim != 1:
        raise ValueError(
            f"window_scores {scores.shape} and window_clip {clip.shape} disagree on the number of windows"
        )
    counts = np.bincount(clip, minlength=n_clips)
    if counts.shape[0] != n_clips or (counts == 0).any():
        raise ValueError(f"window_clip must cover every clip in 0..{n_clips - 1}")
    sums = np.zeros((n_clips, *scores.shape[1:]))
    np.add.at(sums, clip, scores)
    return sums / counts.reshape(-1, *([1] * (scores.ndim - 1)))


def evaluate_predictions(task: dict, labels: np.ndarray, clip_scores: np.ndarray) -> dict[str, float]:
    """Clip-level metrics for a task kind.

    multi -> {"roc_auc", "pr_auc"} (macro, classes lacking positives/negatives
    skipped); single -> {"accuracy"}; regression -> {"r2"}.
    """
    kind, _ = _task_info(task)
    labels, clip_scores = np.asarray(labels), np.asarray(clip_scores)
    if kind == "multi":
        return {
            "roc_auc": metrics.macro_roc_auc(labels, clip_scores),
            "pr_auc": metrics.macro_average_precision(labels, clip_scores),
        }
    if kind == "single":
        return {"accuracy": metrics.accuracy(labels, clip_scores)}
    return {"r2": metrics.r2(labels, clip_scores.reshape(labels.shape))}


def _row_losses(kind: str, logits: jax.Array, y: jax.Array) -> jax.Array:
    if kind == "multi":
        return optax.sigmoid_binary_cross_entropy(logits, y).mean(axis=-1)
    if kind == "single":
        return optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return (logits[:, 0] - y) ** 2


def _prior_bias(kind: str, n_out: int, window_targets: jax.Array) -> np.ndarray:
    """Bias whose predictions equal the train label prior (0 for regression)."""
    y = np.asarray(window_targets)
    if kind == "regression":
        return np.zeros(1, np.float32)
    if kind == "multi":
        p = np.clip(y.mean(axis=0), 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p)).astype(np.float32)
    p = np.clip(np.bincount(y, minlength=n_out) / y.size, 1e-4, None)
    return np.log(p).astype(np.float32)


def _masked_mean_loss(kind: str, params: dict, x: jax.Array, y: jax.Array, weight: jax.Array) -> jax.Array:
    losses = _row_losses(kind, x @ params["w"] + params["b"], y)
    return jnp.sum(losses * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def train_probe(
    task: dict,
    train: Split,
    valid: Split,
    test: Split,
    config: ProbeConfig = ProbeConfig(),
) -> ProbeResult:
    """Train a linear probe on train windows, early-stop on valid loss, score clips.

    Returns test and valid clip-level metrics of the best-valid-loss parameters.
    """
    kind, n_out = _task_info(task)
    if config.batch_size < 1 or config.max_epochs < 1 or config.patience < 1:
        raise ValueError("batch_size, max_epochs and patience must all be >= 1")
    x_tr, c_tr, y_tr = _check_split("train", train, kind, n_out, None)
    dim = x_tr.shape[1]
    x_va, c_va, y_va = _check_split("valid", valid, kind, n_out, dim)
    x_te, c_te, y_te = _check_split("test", test, kind, n_out, dim)

    # Fit on train only, apply everywhere: no test statistics leak into the probe.
    mean = x_tr.mean(axis=0)
    std = np.maximum(x_tr.std(axis=0), _STD_FLOOR)

    def features(x: np.ndarray) -> jax.Array:
        return jnp.asarray(((x - mean) / std).astype(np.float32))

    # Window targets; regression targets standardised so lr/weight decay are scale-free.
    y_mean, y_std = 0.0, 1.0
    if kind == "regression":
        y_mean = float(y_tr[c_tr].mean())
        y_std = max(float(y_tr[c_tr].std()), _STD_FLOOR)

    def targets(y: np.ndarray, clip: np.ndarray) -> jax.Array:
        yw = y[clip]
        return jnp.asarray(((yw - y_mean) / y_std).astype(np.float32) if kind == "regression" else yw)

    xt, yt = features(x_tr), targets(y_tr, c_tr)
    xv, yv = features(x_va), targets(y_va, c_va)

    n_train = xt.shape[0]
    batch = min(config.batch_size, n_train)
    n_batches = math.ceil(n_train / batch)
    pad = n_batches * batch - n_train
    # Padded rows (index 0) get weight 0, so the last partial batch is an exact mean.
    mask = (jnp.arange(n_batches * batch) < n_train).astype(jnp.float32)
    mask = mask.reshape(n_batches, batch)
    optimizer = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = functools.partial(_masked_mean_loss, kind)

    @jax.jit
    def run_epoch(params, opt_state, key, x, y, x_val, y_val):
        perm = jnp.concatenate([jax.random.permutation(key, n_train), jnp.zeros(pad, jnp.int32)])

        def step(carry, batch_in):
            params, opt_state = carry
            idx, w = batch_in
            grads = jax.grad(loss_fn)(params, x[idx], y[idx], w)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(
            step, (params, opt_state), (perm.reshape(n_batches, batch), mask)
        )
        val_loss = loss_fn(params, x_val, y_val, jnp.ones(x_val.shape[0]))
        return params, opt_state, val_loss

    # Deterministic init (every probe loss is convex, so the seed only sets batch
    # order): w = 0 and b = the train label prior's logits. With lr 1e-3 and rare
    # tags, learning the prior from b = 0 would otherwise eat most of the epochs.
    params = {
        "w": jnp.zeros((dim, n_out)),
        "b": jnp.asarray(_prior_bias(kind, n_out, yt)),
    }
    opt_state = optimizer.init(params)
    key = jax.random.PRNGKey(config.seed)
    best = (math.inf, params, 0)  # (valid loss, params, epoch)
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        params, opt_state, val_loss = run_epoch(
            params, opt_state, jax.random.fold_in(key, epoch), xt, yt, xv, yv
        )
        val_loss = float(val_loss)
        if val_loss < best[0]:  # NaN never improves, so a divergent run stops early
            best = (val_loss, params, epoch)
        elif epoch - best[2] >= config.patience:
            break
    best_params = best[1]

    @jax.jit
    def predict(x):
        out = x @ best_params["w"] + best_params["b"]
        if kind == "multi":
            return jax.nn.sigmoid(out)
        if kind == "single":
            return jax.nn.softmax(out, axis=-1)
        return out[:, 0]

    def clip_metrics(x: np.ndarray, clip: np.ndarray, labels: np.ndarray):
        scores = np.asarray(predict(features(x)), dtype=np.float64)
        if kind == "regression":
            scores = scores * y_std + y_mean
        clip_scores = aggregate_clip_scores(scores, clip, labels.shape[0])
        return evaluate_predictions(task, labels, clip_scores)

    return ProbeResult(
        metrics=clip_metrics(x_te, c_te, y_te),
        primary_metric=_PRIMARY[kind],
        best_epoch=best[2],
        epochs_run=epoch,
        valid_metrics=clip_metrics(x_va, c_va, y_va),
    )
