"""Clip-level evaluation metrics in pure NumPy.

These reproduce the scikit-learn definitions used by CLMR-style linear evaluation
(``roc_auc_score``, ``average_precision_score``, ``accuracy_score`` on argmax,
``r2_score``, ``top_k_accuracy_score``) and mir_eval's MIREX key score, so published
numbers stay comparable, without making either library a runtime dependency. Ties in
scores are handled exactly as scikit-learn does: ROC-AUC gives tied scores average
ranks, and average precision treats a run of tied scores as one threshold.

Deliberate difference from scikit-learn: the macro averages skip classes whose
metric is undefined on the given data (ROC-AUC: a class with only positives or
only negatives; AP: a class with no positives) instead of raising or returning
0/NaN. Small test splits of multi-label tag datasets (e.g. MagnaTagATune top-50)
often miss a rare tag, and that must not crash or silently bias the average.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "accuracy",
    "average_precision",
    "average_precision_columns",
    "bootstrap_ci",
    "is_key_vocabulary",
    "macro_average_precision",
    "macro_roc_auc",
    "mean_std",
    "median_rank",
    "mirex_key_score",
    "parse_key",
    "r2",
    "recall_at_k",
    "retrieval_ranks",
    "roc_auc",
    "roc_auc_columns",
]


# ----------------------------------------------------------------------------- ranking metrics


def _labels_and_scores(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not ((y_true == 0) | (y_true == 1)).all():
        raise ValueError("y_true must be binary (0/1)")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN/inf")
    return y_true == 1, y_score


def _binary_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 1 or y_score.ndim != 1 or y_true.shape != y_score.shape:
        raise ValueError(
            f"expected 1-D y_true and y_score of equal length, got {y_true.shape} and {y_score.shape}"
        )
    return _labels_and_scores(y_true, y_score)


def _column_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(
            f"expected [n, C] y_true and y_score of equal shape, got {y_true.shape} and {y_score.shape}"
        )
    return _labels_and_scores(y_true, y_score)


class _Ranked(NamedTuple):
    """Every score column sorted once, reduced to what the rank metrics need per positive.

    The metrics take per-row counts (a bootstrap resample is the original rows counted
    as often as each was drawn), so resampling never sorts again. Positives are listed
    column by column, in ascending score order within a column.
    """

    order: np.ndarray  # [C, n] row at each ascending position of each column
    row: np.ndarray  # [T] row of each positive
    col: np.ndarray  # [T] column of each positive
    first: np.ndarray  # [T] flat [C * n] position where its tie run starts
    first_row: np.ndarray  # [T] row at that position
    last: np.ndarray  # [T] flat position where its tie run ends
    run_head: np.ndarray  # [T] index of the first positive in the same column and tie run


def _rank(y_true: np.ndarray, y_score: np.ndarray) -> _Ranked:
    """Sort each column of validated [n, C] inputs (labels bool)."""
    n_rows = y_score.shape[0]
    # One contiguous [C, n] row per column: the sort, tie runs and flat positions run along it.
    scores = np.ascontiguousarray(y_score.T)
    order = np.argsort(scores, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    starts = np.ones(scores.shape, dtype=bool)
    starts[:, 1:] = scores[:, 1:] != scores[:, :-1]
    # Flat [C * n] positions: every column opens with a run start, so the start after a
    # positive's run (or the end of all columns) closes that run.
    run_starts = np.r_[np.flatnonzero(starts), scores.size]
    positive = np.flatnonzero(np.take_along_axis(np.ascontiguousarray(y_true.T), order, axis=1))
    run = np.searchsorted(run_starts, positive, side="right") - 1
    col = positive // max(n_rows, 1)  # no positives when there are no rows
    heads = np.ones(run.shape, dtype=bool)
    heads[1:] = run[1:] != run[:-1]
    run_head = np.maximum.accumulate(np.where(heads, np.arange(run.size), 0))
    first = run_starts[run]
    flat_order = order.ravel()
    return _Ranked(
        order, flat_order[positive], col, first, flat_order[first], run_starts[run + 1] - 1, run_head
    )


def _rank_binary(y_true: np.ndarray, y_score: np.ndarray) -> _Ranked:
    y_true, y_score = _binary_inputs(y_true, y_score)
    return _rank(y_true[:, None], y_score[:, None])


def _rank_columns(y_true: np.ndarray, y_score: np.ndarray) -> _Ranked:
    return _rank(*_column_inputs(y_true, y_score))


def _counts(
    ranked: _Ranked, count: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Per positive: its count and the counts below / through its tie run; per column: P; total.

    count: int [n] times each row is counted, None for once each.
    """
    n_cols, n = ranked.order.shape
    if count is None:
        count = np.ones(n, dtype=np.int64)
    # Integer sums are exact and faster than float ones; summing in place spares a second
    # large temporary, whose fresh pages cost more than the sum on every resample.
    cumulative = count[ranked.order]
    np.cumsum(cumulative, axis=1, out=cumulative)
    cumulative = cumulative.ravel()
    below = cumulative[ranked.first] - count[ranked.first_row]
    c_pos = count[ranked.row]
    npos = np.bincount(ranked.col, weights=c_pos, minlength=n_cols)
    return c_pos, below, cumulative[ranked.last], npos, int(count.sum())


def _auc(ranked: _Ranked, count: np.ndarray | None = None) -> np.ndarray:
    """Mann-Whitney U / (P * N) per column; NaN without both classes."""
    c_pos, below, through, npos, total = _counts(ranked, count)
    # Each positive outranks the rows below its run and half the rows tied with it;
    # over all positives that counts the positive-positive pairs as npos^2 / 2.
    outranked = np.bincount(ranked.col, weights=c_pos * (below + through), minlength=npos.size) / 2
    pairs = npos * (total - npos)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, (outranked - npos**2 / 2) / pairs, np.nan)


def _ap(ranked: _Ranked, count: np.ndarray | None = None) -> np.ndarray:
    """Average precision per column; NaN without a positive."""
    c_pos, below, _, npos, total = _counts(ranked, count)
    # Positives at or above each positive's run: the positives listed up to the end of
    # its column minus those listed before the run's first positive.
    listed_before = np.cumsum(c_pos) - c_pos
    true_pos = np.cumsum(npos)[ranked.col] - listed_before[ranked.run_head]
    retrieved = total - below
    # A positive drawn zero times may sit above every drawn row (retrieved = 0).
    hits = np.divide(c_pos * true_pos, retrieved, out=np.zeros(retrieved.shape), where=c_pos > 0)
    summed = np.bincount(ranked.col, weights=hits, minlength=npos.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(npos > 0, summed / npos, np.nan)


def roc_auc_columns(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """ROC-AUC of each column of [n, C] 0/1 targets and scores, as scikit-learn's roc_auc_score.

    float64 [C]; NaN for a column with only positives or only negatives.
    """
    return _auc(_rank_columns(y_true, y_score))


def average_precision_columns(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Average precision of each column of [n, C] 0/1 targets and scores, as scikit-learn's.

    float64 [C]; NaN for a column without positives.
    """
    return _ap(_rank_columns(y_true, y_score))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Binary ROC-AUC (tied scores share their average rank, as scikit-learn).

    Raises ValueError if y_true contains only one class (AUC undefined).
    """
    value = float(_auc(_rank_binary(y_true, y_score))[0])
    if math.isnan(value):
        raise ValueError("roc_auc is undefined when y_true contains only one class")
    return value


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Binary average precision: sum_n (R_n - R_{n-1}) P_n over distinct thresholds.

    No interpolation, as scikit-learn. Raises ValueError if y_true has no positives.
    """
    value = float(_ap(_rank_binary(y_true, y_score))[0])
    if math.isnan(value):
        raise ValueError("average_precision is undefined when y_true has no positives")
    return value


def _mean_defined(values: np.ndarray) -> float:
    """Mean of the non-NaN entries; NaN if there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def macro_roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean ROC-AUC over classes of a multi-hot [n, C] target.

    Classes with only positives or only negatives are skipped (scikit-learn would
    raise); raises ValueError if no class qualifies.
    """
    value = _mean_defined(roc_auc_columns(y_true, y_score))
    if math.isnan(value):
        raise ValueError("macro_roc_auc: no class has both positive and negative rows")
    return value


def macro_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean average precision over classes of a multi-hot [n, C] target.

    Classes with no positives are skipped (scikit-learn would count them as 0);
    raises ValueError if no class has a positive.
    """
    value = _mean_defined(average_precision_columns(y_true, y_score))
    if math.isnan(value):
        raise ValueError("macro_average_precision: no class has a positive label")
    return value


# ----------------------------------------------------------------------------- other metrics


def accuracy(y_true: np.ndarray, y_pred_scores: np.ndarray) -> float:
    """Fraction of rows whose argmax score equals the label (first max wins ties)."""
    y_true, y_pred_scores = np.asarray(y_true), np.asarray(y_pred_scores)
    if y_true.ndim != 1 or y_pred_scores.ndim != 2 or y_pred_scores.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"expected y_true [n] and scores [n, C], got {y_true.shape} and {y_pred_scores.shape}"
        )
    if y_true.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(np.argmax(y_pred_scores, axis=1) == y_true))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, as scikit-learn's r2_score (force_finite=True).

    [n] or [n, K] (uniform average over outputs). A constant target scores 1.0 if
    predicted exactly, else 0.0.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim not in (1, 2) or y_true.shape[0] < 2:
        raise ValueError(
            f"expected y_true and y_pred of equal shape [n] or [n, K] with n >= 2, "
            f"got {y_true.shape} and {y_pred.shape}"
        )
    y_true = y_true.reshape(y_true.shape[0], -1)
    y_pred = y_pred.reshape(y_true.shape)
    ss_res = np.sum((y_true - y_pred) ** 2, axis=0)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fallback = np.where(ss_res == 0, 1.0, 0.0)
        score = np.where(ss_tot != 0, 1.0 - ss_res / ss_tot, fallback)
    return float(np.mean(score))


def retrieval_ranks(similarity: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of each query's relevant item among all items, int64 [Q].

    similarity [Q, I], relevant [Q] item indices. Ties rank the higher item index first,
    as scikit-learn's top_k_accuracy_score (which reverses a stable ascending sort).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    relevant = np.asarray(relevant)
    if similarity.ndim != 2 or relevant.shape != similarity.shape[:1] or relevant.size == 0:
        raise ValueError(
            f"expected similarity [Q, I] and relevant [Q] with Q >= 1, got {similarity.shape} and "
            f"{relevant.shape}"
        )
    if not np.issubdtype(relevant.dtype, np.integer) or (relevant < 0).any():
        raise ValueError("relevant must hold item indices (non-negative integers)")
    if (relevant >= similarity.shape[1]).any():
        raise ValueError(f"relevant indexes an item beyond the {similarity.shape[1]} items")
    if not np.isfinite(similarity).all():
        raise ValueError("similarity contains NaN/inf")
    target = similarity[np.arange(relevant.size), relevant][:, None]
    later = np.arange(similarity.shape[1]) > relevant[:, None]
    ahead = (similarity > target) | ((similarity == target) & later)
    return ahead.sum(axis=1).astype(np.int64) + 1


def recall_at_k(similarity: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Fraction of queries whose relevant item is among their k most similar items.

    similarity [Q, I], relevant [Q] item indices; ties as in `retrieval_ranks`.
    """
    ranks = retrieval_ranks(similarity, relevant)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return float(np.mean(ranks <= k))


def median_rank(similarity: np.ndarray, relevant: np.ndarray) -> float:
    """Median over queries of the relevant item's 1-based rank (see `retrieval_ranks`):
    1 is perfect; random scores give (I + 1) / 2 on average."""
    return float(np.median(retrieval_ranks(similarity, relevant)))


# ----------------------------------------------------------------------------- musical keys

_TONICS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTALS = {"": 0, "#": 1, "b": -1}
_MODES = {"major": "major", "maj": "major", "minor": "minor", "min": "minor"}


def parse_key(name: str) -> tuple[int, str] | None:
    """(pitch class 0-11, "major" | "minor") of a key like "Db minor" or "f# maj"; None otherwise.

    Tonic and mode are case-insensitive and separated by whitespace; the tonic takes one
    optional '#' or 'b', and the mode may be major, minor, maj or min.
    """
    parts = name.split()
    if len(parts) != 2:
        return None
    tonic, mode = parts[0].lower(), _MODES.get(parts[1].lower())
    if mode is None or tonic[:1] not in _TONICS or tonic[1:] not in _ACCIDENTALS:
        return None
    return (_TONICS[tonic[0]] + _ACCIDENTALS[tonic[1:]]) % 12, mode


def is_key_vocabulary(classes: Sequence[str]) -> bool:
    """Whether there is at least one class and every class is a key name (see parse_key)."""
    return len(classes) > 0 and all(parse_key(c) is not None for c in classes)


def _key_weight(reference: tuple[int, str], estimate: tuple[int, str]) -> float:
    """mir_eval.key.weighted_score of two parsed keys."""
    (ref_pc, ref_mode), (est_pc, est_mode) = reference, estimate
    up = (est_pc - ref_pc) % 12
    if est_mode == ref_mode:
        return {0: 1.0, 7: 0.5}.get(up, 0.0)  # same key; estimate a fifth above
    if up == (9 if ref_mode == "major" else 3):
        return 0.3  # relative minor / major
    return 0.2 if up == 0 else 0.0  # parallel minor / major


def mirex_key_score(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Mean MIREX weighted key score of predicted against reference key names.

    Per pair, as mir_eval.key.weighted_score: same key 1.0, estimated tonic a fifth above
    in the same mode 0.5, relative major/minor 0.3, parallel major/minor 0.2, else 0.
    Raises ValueError on a name parse_key rejects.
    """
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"expected equal, non-zero numbers of keys, got {len(y_true)} and {len(y_pred)}")

    def parsed(name: str) -> tuple[int, str]:
        key = parse_key(name)
        if key is None:
            raise ValueError(f"not a key name: {name!r} (expected e.g. 'C# minor' or 'Eb major')")
        return key

    return float(np.mean([_key_weight(parsed(t), parsed(p)) for t, p in zip(y_true, y_pred, strict=True)]))


# ----------------------------------------------------------------------------- uncertainty


# Bootstrapped by recounting the rows of one sort of the data rather than sorting every
# resample: metric -> (validation and sort of its two inputs, per-column metric of counts).
_BY_COUNT: dict[Callable[..., float], tuple[Callable[..., _Ranked], Callable[..., np.ndarray]]] = {
    roc_auc: (_rank_binary, _auc),
    average_precision: (_rank_binary, _ap),
    macro_roc_auc: (_rank_columns, _auc),
    macro_average_precision: (_rank_columns, _ap),
}


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of metric(*arrays), resampling rows of all arrays together.

    Resamples on which the metric raises ValueError or returns NaN are dropped (a small
    test set may miss a class); (nan, nan) if fewer than 2 succeed. Deterministic given
    seed. The ranking metrics of this module are evaluated from a single sort of the
    data, so input they reject outright raises here.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    if not arrays or any(a.ndim == 0 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(f"expected arrays with equal numbers of rows, got {[a.shape for a in arrays]}")
    n = arrays[0].shape[0]
    if n == 0 or n_boot < 2 or not 0 < level < 1:
        raise ValueError(f"need rows, n_boot >= 2 and 0 < level < 1; got {n} rows, {n_boot}, {level}")
    # Looked up by identity: a metric need not be hashable.
    by_count = next((form for known, form in _BY_COUNT.items() if known is metric), None)
    if by_count is not None and len(arrays) == 2:
        rank, column_metric = by_count
        ranked = rank(*arrays)

        def evaluate(rows: np.ndarray) -> float:
            # Classes undefined on the resample are NaN and skipped, as in the macro metrics;
            # with none defined the mean is NaN and the resample is dropped.
            return _mean_defined(column_metric(ranked, np.bincount(rows, minlength=n)))
    else:

        def evaluate(rows: np.ndarray) -> float:
            return float(metric(*(a[rows] for a in arrays)))

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        try:
            value = evaluate(rng.integers(0, n, size=n))
        except ValueError:
            continue
        if not math.isnan(value):
            values.append(value)
    if len(values) < 2:
        return math.nan, math.nan
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof=0) of values, e.g. scores over seeds.

    The values must be finite and non-empty (drop NaN first); raises ValueError otherwise.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"expected a non-empty sequence of finite numbers, got {values!r}")
    return float(array.mean()), float(array.std())
