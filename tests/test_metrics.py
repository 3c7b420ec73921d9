"""The NumPy metrics must match scikit-learn and mir_eval exactly (test-only references)."""

import mir_eval.key
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxmusic import metrics
from jaxmusic.prepare import synth

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


def _columns_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot targets with an all-negative and an all-positive column, and tied scores."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 300)), int(rng.integers(3, 15))
    y = (rng.random((n, c)) < rng.uniform(0.02, 0.7, size=c)).astype(int)
    y[:, 0], y[:, 1] = 0, 1
    s = np.round(rng.random((n, c)) + 0.4 * y * rng.random(c), int(rng.choice([0, 1, 2, 8])))
    return y, s


@pytest.mark.parametrize("seed", range(25))
def test_column_metrics_match_sklearn(seed: int) -> None:
    y, s = _columns_case(seed)
    auc, ap = metrics.roc_auc_columns(y, s), metrics.average_precision_columns(y, s)
    assert auc.shape == ap.shape == (y.shape[1],) and auc.dtype == ap.dtype == np.float64
    for k in range(y.shape[1]):
        npos = y[:, k].sum()
        if 0 < npos < y.shape[0]:
            assert auc[k] == pytest.approx(skm.roc_auc_score(y[:, k], s[:, k]), abs=1e-12)
        else:
            assert np.isnan(auc[k])
        if npos > 0:
            assert ap[k] == pytest.approx(skm.average_precision_score(y[:, k], s[:, k]), abs=1e-12)
        else:
            assert np.isnan(ap[k])


def test_column_metrics_validate() -> None:
    with pytest.raises(ValueError, match="equal shape"):
        metrics.roc_auc_columns(np.zeros((3, 2), int), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="binary"):
        metrics.average_precision_columns(np.full((3, 2), 2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc_columns(np.eye(2, dtype=int), np.array([[0.1, np.nan], [0.2, 0.3]]))


# mir_eval spells a tonic with at most one accidental and no Cb/Fb/E#/B#.
_SPELLINGS = {
    0: ["C", "c"], 1: ["C#", "Db", "db"], 2: ["D", "d"], 3: ["D#", "Eb", "EB"], 4: ["E", "e"],
    5: ["F", "f"], 6: ["F#", "Gb", "f#"], 7: ["G", "g"], 8: ["G#", "Ab", "ab"], 9: ["A", "a"],
    10: ["A#", "Bb", "bb"], 11: ["B", "b"],
}  # fmt: skip


def _spell(rng: np.random.Generator, pc: int, mode: str) -> str:
    return f"{rng.choice(_SPELLINGS[pc % 12])} {mode}"


def test_mirex_key_score_every_pair_matches_mir_eval() -> None:
    keys = [f"{names[-1]} {mode}" for names in _SPELLINGS.values() for mode in ("major", "minor")]
    for ref in keys:
        for est in keys:
            assert metrics.mirex_key_score([ref], [est]) == mir_eval.key.weighted_score(ref, est), (ref, est)


@pytest.mark.parametrize("seed", range(5))
def test_mirex_key_score_matches_mir_eval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, est = [], []
    other = {"major": "minor", "minor": "major"}
    for _ in range(400):
        pc, mode = int(rng.integers(12)), str(rng.choice(["major", "minor"]))
        # Related keys are rare among random pairs: draw them on purpose, in both directions.
        est_pc, est_mode = [
            (int(rng.integers(12)), str(rng.choice(["major", "minor"]))),
            (pc, mode),
            (pc + 7, mode),
            (pc + 5, mode),
            (pc + (9 if mode == "major" else 3), other[mode]),
            (pc + (3 if mode == "major" else 9), other[mode]),
            (pc, other[mode]),
        ][int(rng.integers(7))]
        ref.append(_spell(rng, pc, mode))
        est.append(_spell(rng, est_pc, est_mode))
    expected = np.mean([mir_eval.key.weighted_score(r, e) for r, e in zip(ref, est, strict=True)])
    assert metrics.mirex_key_score(ref, est) == pytest.approx(expected, abs=1e-12)
    assert metrics.mirex_key_score(np.asarray(ref), np.asarray(est)) == pytest.approx(expected, abs=1e-12)


def test_mirex_key_score_relations() -> None:
    assert metrics.mirex_key_score(["C major"], ["G major"]) == 0.5
    assert metrics.mirex_key_score(["C major"], ["F major"]) == 0.0  # a fifth below
    assert metrics.mirex_key_score(["A minor"], ["E minor"]) == 0.5
    assert metrics.mirex_key_score(["C major"], ["A minor"]) == 0.3
    assert metrics.mirex_key_score(["A minor"], ["C major"]) == 0.3
    assert metrics.mirex_key_score(["C major"], ["c min"]) == 0.2
    assert metrics.mirex_key_score(["C# major", "Db minor"], ["Db maj", "C# minor"]) == 1.0
    with pytest.raises(ValueError, match="not a key name"):
        metrics.mirex_key_score(["C major"], ["X"])
    with pytest.raises(ValueError):
        metrics.mirex_key_score(["C major"], [])


def test_parse_key() -> None:
    assert metrics.parse_key("C major") == (0, "major")
    assert metrics.parse_key("db MINOR") == (1, "minor")
    assert metrics.parse_key(" F# min ") == (6, "minor")
    assert metrics.parse_key("Bb maj") == (10, "major")
    assert metrics.parse_key("Cb major") == (11, "major")
    for name in ("H major", "C dorian", "C", "X", "C## major", "C major key", "", "C:major"):
        assert metrics.parse_key(name) is None, name
    assert metrics.is_key_vocabulary(synth.KEYS)
    assert not metrics.is_key_vocabulary(["C major", "rock"])
    assert not metrics.is_key_vocabulary([])


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_recall_at_k_matches_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    q, items = int(rng.integers(1, 100)), int(rng.integers(12, 80))
    relevant = rng.integers(0, items, q)
    # One decimal: many tied similarities, where the tie order matters.
    similarity = np.round(rng.normal(size=(q, items)), int(rng.choice([1, 8])))
    similarity[np.arange(q), relevant] += rng.uniform(0, 2)
    expected = skm.top_k_accuracy_score(relevant, similarity, k=k, labels=np.arange(items))
    assert metrics.recall_at_k(similarity, relevant, k) == pytest.approx(expected, abs=1e-12)


def test_recall_at_k_validates() -> None:
    with pytest.raises(ValueError):
        metrics.recall_at_k(np.zeros((2, 3)), np.array([0, 3]), 1)
    with pytest.raises(ValueError):
        metrics.recall_at_k(np.zeros((2, 3)), np.array([0, 1]), 0)
    with pytest.raises(ValueError):
        metrics.recall_at_k(np.zeros((2, 3)), np.array([0.0, 1.0]), 1)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


def test_bootstrap_ci_deterministic_and_contains_value() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    ci = metrics.bootstrap_ci(_mean, x, n_boot=300, seed=3)
    assert ci == metrics.bootstrap_ci(_mean, x, n_boot=300, seed=3)
    assert ci != metrics.bootstrap_ci(_mean, x, n_boot=300, seed=4)
    assert ci[0] < _mean(x) < ci[1]
    y, s = _columns_case(1)
    low, high = metrics.bootstrap_ci(metrics.macro_roc_auc, y, s, n_boot=300)
    assert low < metrics.macro_roc_auc(y, s) < high


def test_bootstrap_ci_narrows_with_more_rows() -> None:
    rng = np.random.default_rng(0)

    def widths(n: int) -> tuple[float, float]:
        y = (rng.random((n, 5)) < 0.3).astype(int)
        s = rng.random((n, 5)) + 0.5 * y
        low, high = metrics.bootstrap_ci(metrics.macro_roc_auc, y, s, n_boot=300)
        labels = rng.integers(0, 4, n)
        acc_low, acc_high = metrics.bootstrap_ci(
            metrics.accuracy, labels, np.eye(4)[labels] + 2 * rng.random((n, 4))
        )
        return high - low, acc_high - acc_low

    small, large = widths(200), widths(3200)
    assert large[0] < 0.5 * small[0] and large[1] < 0.5 * small[1]
    assert metrics.bootstrap_ci(_mean, np.ones(10), level=0.5) == (1.0, 1.0)


@pytest.mark.parametrize("failure", ["raise", "nan"])
def test_bootstrap_ci_skips_failing_resamples(failure: str) -> None:
    def positive_min(x: np.ndarray) -> float:
        if x.min() == 0:  # resamples that drew row 0
            if failure == "raise":
                raise ValueError("undefined")
            return float("nan")
        return float(x.min())

    x = np.arange(8.0)
    low, high = metrics.bootstrap_ci(positive_min, x, n_boot=500)
    assert 1.0 <= low <= high <= 3.0
    assert np.isnan(metrics.bootstrap_ci(positive_min, np.zeros(5), n_boot=50)).all()
    calls = iter(range(1000))
    once = lambda x: 0.5 if next(calls) == 0 else float("nan")
    assert np.isnan(metrics.bootstrap_ci(once, x, n_boot=50)).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", ["macro_roc_auc", "macro_average_precision", "roc_auc", "average_precision"])
def test_bootstrap_ci_rank_metrics_equal_row_resampling(seed: int, name: str) -> None:
    # The rank metrics are bootstrapped by recounting rows of one sort; a wrapper hides the
    # metric's identity and so resamples rows, and both must agree.
    metric = getattr(metrics, name)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    y = (rng.random((n, 6)) < [0.02, 0.05, 0.1, 0.3, 0.6, 0.97]).astype(int)
    y[0, 0] = 1  # rare classes that many resamples miss
    y[1, 5] = 0
    s = np.round(rng.random((n, 6)) + 0.3 * y, 1)
    if not name.startswith("macro"):
        y, s = y[:, 1], s[:, 1]
    fast = metrics.bootstrap_ci(metric, y, s, n_boot=200, seed=seed)

    def by_rows(a: np.ndarray, b: np.ndarray) -> float:
        return metric(a, b)

    rows = metrics.bootstrap_ci(by_rows, y, s, n_boot=200, seed=seed)
    assert fast == pytest.approx(rows, abs=1e-12)


def test_bootstrap_ci_validates() -> None:
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(_mean, np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(_mean, np.zeros(3), level=1.0)
    with pytest.raises(ValueError, match="binary"):
        metrics.bootstrap_ci(metrics.macro_roc_auc, np.full((3, 2), 2), np.zeros((3, 2)))


def test_mean_std() -> None:
    values = [0.5, 0.7, 0.9, 0.2]
    assert metrics.mean_std(values) == pytest.approx((np.mean(values), np.std(values)), abs=1e-15)
    assert metrics.mean_std([3.0]) == (3.0, 0.0)
    for bad in ([], [1.0, float("nan")], [[1.0, 2.0]]):
        with pytest.raises(ValueError):
            metrics.mean_std(bad)
