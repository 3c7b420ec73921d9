"""Clip-level evaluation metrics in pure NumPy.

These reproduce the scikit-learn definitions used by CLMR-style linear evaluation
(``roc_auc_score``, ``average_precision_score``, ``accuracy_score`` on argmax,
``r2_score``) so published numbers stay comparable, without making scikit-learn a
runtime dependency. Ties in scores are handled exactly as scikit-learn does: the
curves are built over *distinct* score thresholds.

Deliberate difference from scikit-learn: the macro averages skip classes whose
metric is undefined on the given data (ROC-AUC: a class with only positives or
only negatives; AP: a class with no positives) instead of raising or returning
0/NaN. Small test splits of multi-label tag datasets (e.g. MagnaTagATune top-50)
often miss a rare tag, and that must not crash or silently bias the average.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "accuracy",
    "average_precision",
    "macro_average_precision",
    "macro_roc_auc",
    "r2",
    "roc_auc",
]


def _binary_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 1 or y_score.ndim != 1 or y_true.shape != y_score.shape:
        raise ValueError(
            f"expected 1-D y_true and y_score of equal length, got {y_true.shape} and {y_score.shape}"
        )
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must be binary (0/1)")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN/inf")
    return y_true.astype(np.float64), y_score


def _binary_clf_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (fps, tps) at each distinct threshold, highest score first."""
    # Stable sort so the result does not depend on the order of tied samples.
    order = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[order], y_true[order]
    # Last index of each run of equal scores: a threshold admits all ties at once.
    distinct = np.where(np.diff(y_score))[0]
    idx = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true)[idx]
    fps = 1 + idx - tps
    return fps, tps


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Binary ROC-AUC (trapezoid over distinct thresholds, as scikit-learn).

    Raises ValueError if y_true contains only one class (AUC undefined).
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
    fps, tps = _binary_clf_curve(y_true, y_score)
    if tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("roc_auc is undefined when y_true contains only one class")
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Binary average precision: sum_n (R_n - R_{n-1}) P_n over distinct thresholds.

    No interpolation, as scikit-learn. Raises ValueError if y_true has no positives.
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
    fps, tps = _binary_clf_curve(y_true, y_score)
    if tps[-1] == 0:
        raise ValueError("average_precision is undefined when y_true has no positives")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _per_class(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(
            f"expected [n, C] y_true and y_score of equal shape, got {y_true.shape} and {y_score.shape}"
        )
    return y_true, y_score


def macro_roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean ROC-AUC over classes of a multi-hot [n, C] target.

    Classes with only positives or only negatives are skipped (scikit-learn would
    raise); raises ValueError if no class qualifies.
    """
    y_true, y_score = _per_class(y_true, y_score)
    npos = (y_true == 1).sum(axis=0)
    keep = np.flatnonzero((npos > 0) & (npos < y_true.shape[0]))
    if keep.size == 0:
        raise ValueError("macro_roc_auc: no class has both positive and negative rows")
    return float(np.mean([roc_auc(y_true[:, c], y_score[:, c]) for c in keep]))


def macro_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean average precision over classes of a multi-hot [n, C] target.

    Classes with no positives are skipped (scikit-learn would count them as 0);
    raises ValueError if no class has a positive.
    """
    y_true, y_score = _per_class(y_true, y_score)
    keep = np.flatnonzero((y_true == 1).any(axis=0))
    if keep.size == 0:
        raise ValueError("macro_average_precision: no class has a positive label")
    scores = [average_precision(y_true[:, c], y_score[:, c]) for c in keep]
    return float(np.mean(scores))


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
