"""Probes on frozen embeddings, in Optax: many at once.

One probe fit is a pure function, `fit(spec, hparams, data, key)`: mini-batch AdamW on
window embeddings (each window inheriting its clip's label), one epoch a `lax.scan`,
epochs a `lax.while_loop` that stops `patience` epochs after the validation metric
last improved and returns the parameters of the best epoch. Because it is pure and
its loop is on device, `jax.vmap` runs a whole hyper-parameter grid (learning rate x
weight decay x seed) in one program (`fit_grid`), and a second `vmap` runs that grid
over few-shot episodes of equal shape (`fit_episodes`).

Early stopping watches the validation *metric* on clip-averaged predictions (macro
ROC-AUC for tags, accuracy for classes, R² for regression), ties broken by the
validation loss: with a few dozen validation clips the loss can start rising while
the metric is still improving, and stopping on it left probes at their class prior.

Protocol, as CLMR and MARBLE run it: features standardised with the train windows'
statistics; predictions (sigmoid, softmax or value) averaged over the windows of a
clip; metrics per clip. `probe` picks the setting best on validation and reports it
on test, together with every setting's validation figure and, for the chosen
learning rate and weight decay, the test figure of each seed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmusic import metrics

PRIMARY = {"multi": "roc_auc", "single": "accuracy", "regression": "r2"}
MODELS = ("linear", "mlp")
_STD_FLOOR = 1e-6


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """A probe and its hyper-parameter grid (every combination is fitted)."""

    model: str = "linear"  # "linear" or "mlp" (one hidden layer, ReLU, dropout)
    learning_rates: tuple[float, ...] = (1e-3,)
    weight_decays: tuple[float, ...] = (1e-6,)
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10
    hidden: int = 512
    dropout: float = 0.25

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"probe model must be one of {MODELS}, got {self.model!r}")
        if min(self.batch_size, self.max_epochs, self.patience, self.hidden) < 1:
            raise ValueError("probe batch_size, max_epochs, patience and hidden must all be >= 1")
        if not (self.learning_rates and self.weight_decays and self.seeds):
            raise ValueError(
                "probe learning_rates, weight_decays and seeds must each list at least one value"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"probe dropout must lie in [0, 1), got {self.dropout}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ProbeConfig:
        """From a config section (lists become tuples); unknown keys are refused."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown probe key(s) {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list | tuple) else v for k, v in values.items()})

    def grid(self) -> list[dict[str, float]]:
        """Every (learning_rate, weight_decay, seed) setting, seeds varying fastest."""
        return [
            {"learning_rate": lr, "weight_decay": wd, "seed": s}
            for lr in self.learning_rates
            for wd in self.weight_decays
            for s in self.seeds
        ]


@dataclasses.dataclass(frozen=True)
class FitSpec:
    """The static part of a fit: what is compiled once for a whole grid."""

    kind: str  # "multi", "single" or "regression"
    n_out: int
    n_valid_clips: int
    model: str = "linear"
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10
    hidden: int = 512
    dropout: float = 0.25


class FitData(NamedTuple):
    """Arrays of one fit. Row weights let episodes of different sizes share one shape."""

    x_train: jax.Array  # [W, D] standardised window embeddings
    y_train: jax.Array  # [W] int (single), [W, C] multi-hot, [W] standardised float
    w_train: jax.Array  # [W] 1 for a real window, 0 for padding
    x_valid: jax.Array  # [Wv, D]
    valid_clip: jax.Array  # [Wv] clip of each validation window
    y_valid: jax.Array  # [Nv] / [Nv, C] clip labels
    w_valid: jax.Array  # [Nv] 1 for a real clip, 0 for padding


def task_outputs(task: Mapping[str, Any]) -> tuple[str, int]:
    """(kind, number of probe outputs) of a manifest task."""
    kind = task.get("kind")
    if kind not in PRIMARY:
        raise ValueError(f"task kind must be one of {sorted(PRIMARY)}, got {kind!r}")
    if kind == "regression":
        return kind, 1
    n = len(task.get("classes") or ())
    if n < (2 if kind == "single" else 1):
        raise ValueError(f"task kind {kind!r} needs a 'classes' list, got {n} classes")
    return kind, n


# ----------------------------------------------------------------------------- the model


def init_params(spec: FitSpec, dim: int, prior_bias: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    """Linear: w = 0 and b = the train prior's logits (every probe loss is then convex and
    starts at the prior, so lr 1e-3 is not spent learning base rates). MLP: He-normal
    hidden layer, zero output layer with the same prior bias."""
    if spec.model == "linear":
        return {"w": jnp.zeros((dim, spec.n_out)), "b": prior_bias}
    return {
        "w1": jax.random.normal(key, (dim, spec.hidden)) * jnp.sqrt(2.0 / dim),
        "b1": jnp.zeros(spec.hidden),
        "w": jnp.zeros((spec.hidden, spec.n_out)),
        "b": prior_bias,
    }


def apply(spec: FitSpec, params: dict, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
    """Probe outputs (logits, or standardised values) for rows of x."""
    if spec.model == "mlp":
        x = jax.nn.relu(x @ params["w1"] + params["b1"])
        if dropout_key is not None and spec.dropout > 0:
            keep = jax.random.bernoulli(dropout_key, 1.0 - spec.dropout, x.shape)
            x = jnp.where(keep, x / (1.0 - spec.dropout), 0.0)
    return x @ params["w"] + params["b"]


def scores(spec: FitSpec, params: dict, x: jax.Array) -> jax.Array:
    """Probabilities (sigmoid per tag, softmax over classes) or values [n] (regression)."""
    out = apply(spec, params, x)
    if spec.kind == "multi":
        return jax.nn.sigmoid(out)
    if spec.kind == "single":
        return jax.nn.softmax(out, axis=-1)
    return out[:, 0]


def _row_losses(kind: str, out: jax.Array, y: jax.Array) -> jax.Array:
    if kind == "multi":
        return optax.sigmoid_binary_cross_entropy(out, y).mean(axis=-1)
    if kind == "single":
        return optax.softmax_cross_entropy_with_integer_labels(out, y)
    return (out[:, 0] - y) ** 2


def _prior_bias(spec: FitSpec, y: jax.Array, w: jax.Array) -> jax.Array:
    if spec.kind == "regression":
        return jnp.zeros(1)
    total = jnp.maximum(w.sum(), 1.0)
    if spec.kind == "multi":
        p = jnp.clip((y * w[:, None]).sum(0) / total, 1e-4, 1 - 1e-4)
        return jnp.log(p / (1 - p))
    p = jnp.clip((jax.nn.one_hot(y, spec.n_out) * w[:, None]).sum(0) / total, 1e-4, None)
    return jnp.log(p)


# ------------------------------------------------------- validation metric, on device


def masked_macro_roc_auc(y: jax.Array, s: jax.Array, w: jax.Array) -> jax.Array:
    """Macro ROC-AUC over rows with w = 1, classes lacking positives or negatives skipped,
    ties as average ranks: the definition of `metrics.macro_roc_auc`, in JAX so that it
    runs inside the early-stopping loop."""
    valid = w[:, None] > 0
    masked = jnp.where(valid, s, jnp.inf)  # padding sorts last and never ranks below a real row
    ordered = jnp.sort(masked, axis=0)
    search = jax.vmap(jnp.searchsorted, in_axes=(1, 1, None), out_axes=1)
    below = search(ordered, masked, "left")
    upto = search(ordered, masked, "right")
    ranks = (below + upto + 1) / 2.0
    pos = y * valid
    n_pos = pos.sum(0)
    n_neg = valid.sum(0) - n_pos
    auc = ((ranks * pos).sum(0) - n_pos * (n_pos + 1) / 2) / jnp.maximum(n_pos * n_neg, 1)
    defined = (n_pos > 0) & (n_neg > 0)
    return jnp.sum(jnp.where(defined, auc, 0.0)) / jnp.maximum(defined.sum(), 1)


def _valid_metric(spec: FitSpec, clip_scores: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    n = jnp.maximum(w.sum(), 1.0)
    if spec.kind == "multi":
        return masked_macro_roc_auc(y, clip_scores, w)
    if spec.kind == "single":
        return jnp.sum((jnp.argmax(clip_scores, -1) == y) * w) / n
    mean = jnp.sum(y * w) / n
    ss_tot = jnp.sum(w * (y - mean) ** 2)
    return 1.0 - jnp.sum(w * (y - clip_scores) ** 2) / jnp.maximum(ss_tot, 1e-12)


def clip_mean(window_values: jax.Array, window_clip: jax.Array, n_clips: int) -> jax.Array:
    """Mean of the window rows of each clip ([W, ...] -> [n_clips, ...])."""
    sums = jax.ops.segment_sum(window_values, window_clip, n_clips)
    counts = jax.ops.segment_sum(jnp.ones(window_clip.shape[0]), window_clip, n_clips)
    return sums / jnp.maximum(counts, 1.0).reshape(-1, *([1] * (window_values.ndim - 1)))


# ------------------------------------------------------------------------------ fitting


class FitResult(NamedTuple):
    params: dict
    best_epoch: jax.Array  # 1-based; 0 if no epoch beat the initial prior
    epochs: jax.Array
    valid_metric: jax.Array  # of the best epoch


def fit(spec: FitSpec, hparams: Mapping[str, jax.Array], data: FitData, key: jax.Array) -> FitResult:
    """Train one probe (pure: vmap it over `hparams`/`key`, or over `data`)."""
    dim = data.x_train.shape[1]
    n_train = data.x_train.shape[0]
    batch = min(spec.batch_size, n_train)
    n_batches = math.ceil(n_train / batch)
    pad = n_batches * batch - n_train
    init_key, loop_key = jax.random.split(key)
    params = init_params(spec, dim, _prior_bias(spec, data.y_train, data.w_train), init_key)
    # Biases are not decayed: weight decay is a prior on how features are weighted.
    decay_mask = {k: k.startswith("w") for k in params}
    tx = optax.adamw(hparams["learning_rate"], weight_decay=hparams["weight_decay"], mask=decay_mask)

    def loss_fn(params, x, y, w, dropout_key):
        losses = _row_losses(spec.kind, apply(spec, params, x, dropout_key), y)
        return jnp.sum(losses * w) / jnp.maximum(jnp.sum(w), 1.0)

    def evaluate(params):
        window_scores = scores(spec, params, data.x_valid)
        clip_scores = clip_mean(window_scores, data.valid_clip, spec.n_valid_clips)
        ones = jnp.ones(data.valid_clip.shape[0])
        y_windows = data.y_valid[data.valid_clip]
        w_windows = data.w_valid[data.valid_clip] * ones
        valid_loss = loss_fn(params, data.x_valid, y_windows, w_windows, None)
        return _valid_metric(spec, clip_scores, data.y_valid, data.w_valid), valid_loss

    def epoch(params, opt_state, epoch_key):
        perm_key, drop_key = jax.random.split(epoch_key)
        perm = jnp.concatenate([jax.random.permutation(perm_key, n_train), jnp.zeros(pad, jnp.int32)])
        real = (jnp.arange(n_batches * batch) < n_train).astype(jnp.float32)

        def step(carry, inputs):
            params, opt_state = carry
            idx, real_rows, i = inputs
            w = data.w_train[idx] * real_rows
            grads = jax.grad(loss_fn)(
                params, data.x_train[idx], data.y_train[idx], w, jax.random.fold_in(drop_key, i)
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(
            step,
            (params, opt_state),
            (perm.reshape(n_batches, batch), real.reshape(n_batches, batch), jnp.arange(n_batches)),
        )
        return params, opt_state

    def cond(state):
        e, _, _, _, _, _, best_epoch = state
        return (e < spec.max_epochs) & (e - best_epoch < spec.patience)

    def body(state):
        e, params, opt_state, best_params, best_metric, best_loss, best_epoch = state
        params, opt_state = epoch(params, opt_state, jax.random.fold_in(loop_key, e))
        metric, loss = evaluate(params)
        # NaN never compares greater, so a diverging probe keeps its last good epoch.
        better = (metric > best_metric) | ((metric == best_metric) & (loss < best_loss))
        pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(better, a, b), new, old)
        return (
            e + 1,
            params,
            opt_state,
            pick(params, best_params),
            jnp.where(better, metric, best_metric),
            jnp.where(better, loss, best_loss),
            jnp.where(better, e + 1, best_epoch),
        )

    metric0, loss0 = evaluate(params)
    state = (jnp.int32(0), params, tx.init(params), params, metric0, loss0, jnp.int32(0))
    e, _, _, best_params, best_metric, _, best_epoch = jax.lax.while_loop(cond, body, state)
    return FitResult(best_params, best_epoch, e, best_metric)


def _grid_arrays(grid: Sequence[Mapping[str, float]]) -> tuple[dict[str, jax.Array], jax.Array]:
    hparams = {
        "learning_rate": jnp.asarray([g["learning_rate"] for g in grid], jnp.float32),
        "weight_decay": jnp.asarray([g["weight_decay"] for g in grid], jnp.float32),
    }
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([int(g["seed"]) for g in grid]))
    return hparams, keys


@functools.partial(jax.jit, static_argnums=0)
def _fit_grid(spec: FitSpec, hparams: dict, data: FitData, keys: jax.Array) -> FitResult:
    return jax.vmap(fit, in_axes=(None, 0, None, 0))(spec, hparams, data, keys)


@functools.partial(jax.jit, static_argnums=0)
def _fit_episodes(spec: FitSpec, hparams: dict, data: FitData, keys: jax.Array) -> FitResult:
    grid = jax.vmap(fit, in_axes=(None, 0, None, 0))
    return jax.vmap(grid, in_axes=(None, None, 0, None))(spec, hparams, data, keys)


def fit_grid(spec: FitSpec, grid: Sequence[Mapping[str, float]], data: FitData) -> FitResult:
    """Every setting of `grid` fitted on `data` at once; results stacked on axis 0."""
    hparams, keys = _grid_arrays(grid)
    return _fit_grid(spec, hparams, data, keys)


def fit_episodes(spec: FitSpec, grid: Sequence[Mapping[str, float]], data: FitData) -> FitResult:
    """`fit_grid` over episodes stacked on the leading axis of every `data` array:
    results are [episodes, settings, ...]."""
    hparams, keys = _grid_arrays(grid)
    return _fit_episodes(spec, hparams, data, keys)


@functools.partial(jax.jit, static_argnums=(0, 4))
def predict_clips(
    spec: FitSpec, params: dict, x: jax.Array, window_clip: jax.Array, n_clips: int
) -> jax.Array:
    """Clip-averaged scores of every stacked setting ([G, ...] params) on windows x:
    [G, n_clips, ...]; the per-window scores never leave the device."""
    window_scores = jax.vmap(scores, in_axes=(None, 0, None))(spec, params, x)
    return jax.vmap(clip_mean, in_axes=(0, None, None))(window_scores, window_clip, n_clips)


# ------------------------------------------------------------------- data preparation


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split: window embeddings [W, D], window -> clip index [W], clip labels [N, ...]."""

    window_embeddings: np.ndarray
    window_clip: np.ndarray
    labels: np.ndarray

    def clips(self, index: np.ndarray) -> Split:
        """The sub-split of the clips `index` (renumbered in that order)."""
        index = np.asarray(index, np.int64)
        new = np.full(self.labels.shape[0], -1, np.int64)
        new[index] = np.arange(index.size)
        keep = new[self.window_clip] >= 0
        return Split(self.window_embeddings[keep], new[self.window_clip[keep]], self.labels[index])


def check_labels(name: str, kind: str, n_out: int, labels: np.ndarray) -> np.ndarray:
    """Labels validated for a task kind, in the dtype probes take."""
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


def check_split(name: str, split: Split, kind: str, n_out: int, dim: int | None) -> Split:
    """A split validated (finite embeddings, every clip has a window) for a task."""
    x = np.asarray(split.window_embeddings)
    clip = np.asarray(split.window_clip)
    labels = check_labels(name, kind, n_out, np.asarray(split.labels))
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: window_embeddings must be non-empty [W, D], got {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name}: embedding dim {x.shape[1]} != train dim {dim}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: embeddings contain NaN/inf: re-extract them or check the encoder")
    if clip.shape != (x.shape[0],) or not np.issubdtype(clip.dtype, np.integer):
        raise ValueError(f"{name}: window_clip must be int [{x.shape[0]}], got {clip.dtype} {clip.shape}")
    n = labels.shape[0]
    if clip.min() < 0 or clip.max() >= n:
        raise ValueError(f"{name}: window_clip must index the {n} clips of labels")
    empty = int((np.bincount(clip, minlength=n) == 0).sum())
    if empty:
        raise ValueError(f"{name}: {empty} of {n} clips have no windows")
    return Split(x.astype(np.float32), clip.astype(np.int64), labels)


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Train-split statistics applied everywhere, so no test statistics leak into a probe,
    and encoders of very different scales get the same budget from one learning rate."""

    mean: np.ndarray
    std: np.ndarray
    y_mean: float = 0.0
    y_std: float = 1.0

    @classmethod
    def fit(cls, kind: str, train: Split) -> Standardizer:
        x = train.window_embeddings.astype(np.float64)
        y_mean, y_std = 0.0, 1.0
        if kind == "regression":
            yw = train.labels[train.window_clip]
            y_mean, y_std = float(yw.mean()), max(float(yw.std()), _STD_FLOOR)
        return cls(x.mean(0), np.maximum(x.std(0), _STD_FLOOR), y_mean, y_std)

    def x(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def y(self, kind: str, y: np.ndarray) -> np.ndarray:
        return ((y - self.y_mean) / self.y_std).astype(np.float32) if kind == "regression" else y

    def unscale(self, kind: str, s: np.ndarray) -> np.ndarray:
        return s * self.y_std + self.y_mean if kind == "regression" else s


def fit_data(kind: str, norm: Standardizer, train: Split, valid: Split) -> FitData:
    """FitData of checked splits (all rows real)."""
    return FitData(
        x_train=jnp.asarray(norm.x(train.window_embeddings)),
        y_train=jnp.asarray(norm.y(kind, train.labels)[train.window_clip]),
        w_train=jnp.ones(train.window_clip.shape[0]),
        x_valid=jnp.asarray(norm.x(valid.window_embeddings)),
        valid_clip=jnp.asarray(valid.window_clip),
        y_valid=jnp.asarray(norm.y(kind, valid.labels)),
        w_valid=jnp.ones(valid.labels.shape[0]),
    )


def spec_for(kind: str, n_out: int, n_valid_clips: int, config: ProbeConfig) -> FitSpec:
    """The FitSpec of a task under a ProbeConfig."""
    return FitSpec(
        kind=kind, n_out=n_out, n_valid_clips=n_valid_clips, model=config.model,
        batch_size=config.batch_size, max_epochs=config.max_epochs, patience=config.patience,
        hidden=config.hidden, dropout=config.dropout,
    )  # fmt: skip


# ------------------------------------------------------------------ metrics and probe


def evaluate_predictions(kind: str, labels: np.ndarray, clip_scores: np.ndarray) -> dict[str, float]:
    """Clip-level metrics of a task kind: multi -> roc_auc, pr_auc (macro, undefined tags
    skipped); single -> accuracy; regression -> r2."""
    labels, clip_scores = np.asarray(labels), np.asarray(clip_scores)
    if kind == "multi":
        return {
            "roc_auc": metrics.macro_roc_auc(labels, clip_scores),
            "pr_auc": metrics.macro_average_precision(labels, clip_scores),
        }
    if kind == "single":
        return {"accuracy": metrics.accuracy(labels, clip_scores)}
    return {"r2": metrics.r2(labels, clip_scores.reshape(labels.shape))}


@dataclasses.dataclass(frozen=True)
class ProbeOutcome:
    """A probed task: the setting chosen on validation, its test predictions and figures."""

    kind: str
    primary_metric: str
    setting: dict[str, float]  # the chosen learning_rate, weight_decay, seed
    test_metrics: dict[str, float]
    valid_metrics: dict[str, float]
    test_scores: np.ndarray  # clip-level predictions on test (task units for regression)
    test_labels: np.ndarray
    seed_values: list[float]  # the primary test metric of each seed at the chosen lr and wd
    extra_scores: dict[str, np.ndarray]  # clip predictions of the chosen setting on `extra_tests`
    grid_valid: list[float]  # the primary validation metric of every setting, in grid order
    best_epoch: int
    epochs: int


def _safe(fn, *args) -> dict[str, float]:
    try:
        return fn(*args)
    except ValueError:  # a metric undefined on this split (e.g. a test set of one class)
        return {}


def probe(
    task: Mapping[str, Any],
    train: Split,
    valid: Split,
    test: Split,
    config: ProbeConfig,
    extra_tests: Mapping[str, Split] | None = None,
) -> ProbeOutcome:
    """Fit `config`'s whole grid on train, choose on valid, report on test (and give the
    chosen probe's predictions on `extra_tests`, e.g. a perturbed copy of test)."""
    kind, n_out = task_outputs(task)
    train = check_split("train", train, kind, n_out, None)
    dim = train.window_embeddings.shape[1]
    valid = check_split("valid", valid, kind, n_out, dim)
    test = check_split("test", test, kind, n_out, dim)
    extra = {name: check_split(name, s, kind, n_out, dim) for name, s in (extra_tests or {}).items()}
    norm = Standardizer.fit(kind, train)
    spec = spec_for(kind, n_out, valid.labels.shape[0], config)
    grid = config.grid()
    result = fit_grid(spec, grid, fit_data(kind, norm, train, valid))

    def clip_scores(split: Split, params: dict = result.params) -> np.ndarray:
        x = jnp.asarray(norm.x(split.window_embeddings))
        clips = predict_clips(spec, params, x, jnp.asarray(split.window_clip), split.labels.shape[0])
        return norm.unscale(kind, np.asarray(clips, np.float64))

    valid_scores, test_scores = clip_scores(valid), clip_scores(test)
    primary = PRIMARY[kind]
    grid_valid = [
        _safe(evaluate_predictions, kind, valid.labels, s).get(primary, math.nan) for s in valid_scores
    ]
    ranked = np.where(np.isnan(grid_valid), -np.inf, grid_valid)
    best = int(np.argmax(ranked))  # first best wins ties: grids list small settings first
    chosen = grid[best]
    same = [
        i
        for i, g in enumerate(grid)
        if (g["learning_rate"], g["weight_decay"]) == (chosen["learning_rate"], chosen["weight_decay"])
    ]
    seed_values = [
        _safe(evaluate_predictions, kind, test.labels, test_scores[i]).get(primary, math.nan) for i in same
    ]
    chosen_params = jax.tree.map(lambda p: p[best : best + 1], result.params)
    return ProbeOutcome(
        kind=kind,
        primary_metric=primary,
        setting=dict(chosen),
        test_metrics=_safe(evaluate_predictions, kind, test.labels, test_scores[best]),
        valid_metrics=_safe(evaluate_predictions, kind, valid.labels, valid_scores[best]),
        test_scores=test_scores[best],
        test_labels=test.labels,
        seed_values=seed_values,
        extra_scores={name: clip_scores(split, chosen_params)[0] for name, split in extra.items()},
        grid_valid=[float(v) for v in grid_valid],
        best_epoch=int(result.best_epoch[best]),
        epochs=int(result.epochs[best]),
    )
