"""The NumPy metrics must match scikit-learn exactly (sklearn is a test-only reference)."""

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxmusic import metrics

SEEDS = range(40)


def _binary_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    pos_rate = rng.choice([0.02, 0.1, 0.5, 0.9])
    y = (rng.random(n) < pos_rate).astype(int)
    y[rng.integers(n)] = 1  # both classes present
    y[rng.integers(n)] = 0
    if y.all():
        y[0] = 0
    score = rng.random(n) + 0.5 * y * rng.random()
    # Rounding creates many ties; that is where sklearn's threshold handling matters.
    decimals = int(rng.choice([0, 1, 2, 8]))
    return y, np.round(score, decimals)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_match_sklearn(seed: int) -> None:
    y, s = _binary_case(seed)
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    ap_ref = skm.average_precision_score(y, s)
    assert metrics.average_precision(y, s) == pytest.approx(ap_ref, abs=1e-12)


def test_all_tied_scores() -> None:
    y = np.array([0, 1, 1, 0, 1])
    s = np.full(5, 0.3)
    assert metrics.roc_auc(y, s) == pytest.approx(0.5, abs=1e-12)
    assert metrics.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_macro_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(10, 200)), int(rng.integers(2, 12))
    y = (rng.random((n, c)) < rng.uniform(0.05, 0.6, size=c)).astype(int)
    y[0], y[1] = 1, 0  # every class has both labels, so sklearn's average is defined
    s = np.round(rng.random((n, c)) + 0.3 * y, int(rng.choice([1, 3, 8])))
    ref_auc = skm.roc_auc_score(y, s, average="macro")
    ref_ap = skm.average_precision_score(y, s, average="macro")
    assert metrics.macro_roc_auc(y, s) == pytest.approx(ref_auc, abs=1e-12)
    assert metrics.macro_average_precision(y, s) == pytest.approx(ref_ap, abs=1e-12)


def test_macro_skips_undefined_classes() -> None:
    rng = np.random.default_rng(0)
    n = 50
    good = (rng.random((n, 3)) < 0.4).astype(int)
    good[0], good[1] = 1, 0
    s = rng.random((n, 5))
    y = np.concatenate([good, np.zeros((n, 1), int), np.ones((n, 1), int)], axis=1)
    auc_ref = np.mean([skm.roc_auc_score(good[:, k], s[:, k]) for k in range(3)])
    # AUC skips both the all-negative and the all-positive class.
    assert metrics.macro_roc_auc(y, s) == pytest.approx(auc_ref, abs=1e-12)
    # AP skips only the class without positives; the all-positive class has AP 1.
    ap_ref = np.mean([skm.average_precision_score(y[:, k], s[:, k]) for k in (0, 1, 2, 4)])
    assert metrics.macro_average_precision(y, s) == pytest.approx(ap_ref, abs=1e-12)
    assert metrics.macro_average_precision(y[:, [0, 1, 2, 4]], s[:, [0, 1, 2, 4]]) == (
        pytest.approx(ap_ref, abs=1e-12)
    )
    with pytest.raises(ValueError):
        metrics.macro_roc_auc(np.ones((n, 2), int), s[:, :2])
    with pytest.raises(ValueError):
        metrics.macro_average_precision(np.zeros((n, 2), int), s[:, :2])


def test_binary_undefined_raises() -> None:
    with pytest.raises(ValueError):
        metrics.roc_auc(np.ones(4, int), np.arange(4.0))
    with pytest.raises(ValueError):
        metrics.average_precision(np.zeros(4, int), np.arange(4.0))
    with pytest.raises(ValueError):
        metrics.roc_auc(np.array([0, 2, 1]), np.arange(3.0))


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 200)), int(rng.integers(2, 10))
    y = rng.integers(0, c, n)
    s = rng.random((n, c))
    ref = skm.accuracy_score(y, s.argmax(axis=1))
    assert metrics.accuracy(y, s) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_r2_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    y = rng.normal(size=n) * rng.uniform(0.1, 10)
    pred = y + rng.normal(size=n) * rng.uniform(0, 3)
    assert metrics.r2(y, pred) == pytest.approx(skm.r2_score(y, pred), abs=1e-12)
    y2, p2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    assert metrics.r2(y2, p2) == pytest.approx(skm.r2_score(y2, p2), abs=1e-12)


def test_r2_constant_target() -> None:
    y = np.full(5, 2.0)
    assert metrics.r2(y, y) == skm.r2_score(y, y) == 1.0
    assert metrics.r2(y, y + 1) == skm.r2_score(y, y + 1) == 0.0
