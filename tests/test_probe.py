"""Probes: learn separable data, average windows per clip, stop early on the validation
metric, validate inputs; a vmapped grid gives each setting what fitting it alone gives."""

import dataclasses

import numpy as np
import pytest

from jaxmusic.evaluate import probe
from jaxmusic.evaluate.probe import ProbeConfig, Split

DIM, WINDOWS_PER_CLIP = 32, 3
FAST = ProbeConfig(learning_rates=(1e-2,), max_epochs=100)


def _windows(rng, clip_feats: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Each clip gets WINDOWS_PER_CLIP contiguous windows around its feature vector."""
    clip = np.repeat(np.arange(len(clip_feats)), WINDOWS_PER_CLIP)
    x = clip_feats[clip] + noise * rng.normal(size=(len(clip), clip_feats.shape[1]))
    return x.astype(np.float32), clip.astype(np.int64)


def _splits(make_clips, sizes=(200, 60, 60), noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        feats, labels = make_clips(rng, n)
        x, clip = _windows(rng, feats, noise)
        out.append(Split(x, clip, labels))
    return out


def test_single_label_separable() -> None:
    means = 4.0 * np.random.default_rng(1).normal(size=(4, DIM))

    def make(rng, n):
        y = rng.integers(0, 4, n)
        return means[y] + rng.normal(size=(n, DIM)), y.astype(np.int64)

    task = {"kind": "single", "classes": ["a", "b", "c", "d"]}
    res = probe.probe(task, *_splits(make), FAST)
    assert res.primary_metric == "accuracy"
    assert res.test_metrics["accuracy"] >= 0.99
    assert res.valid_metrics["accuracy"] >= 0.99
    assert 1 <= res.best_epoch <= res.epochs <= FAST.max_epochs


def test_multi_label_separable() -> None:
    n_cls = 5
    mixing = np.random.default_rng(2).normal(size=(n_cls, DIM))

    def make(rng, n):
        signs = rng.choice([-1.0, 1.0], size=(n, n_cls))  # margin: latent is +-1
        feats = signs @ mixing + 0.1 * rng.normal(size=(n, DIM))
        return feats, (signs > 0).astype(np.float32)

    task = {"kind": "multi", "classes": [f"tag{i}" for i in range(n_cls)]}
    res = probe.probe(task, *_splits(make), FAST)
    assert res.primary_metric == "roc_auc"
    assert set(res.test_metrics) == {"roc_auc", "pr_auc"}
    assert res.test_metrics["roc_auc"] >= 0.99
    assert res.test_metrics["pr_auc"] >= 0.99


def test_regression_linear_target() -> None:
    beta = np.random.default_rng(3).normal(size=DIM)

    def make(rng, n):
        feats = rng.normal(size=(n, DIM))
        return feats, (10.0 + 5.0 * feats @ beta + 0.01 * rng.normal(size=n))

    task = {"kind": "regression"}
    res = probe.probe(task, *_splits(make, noise=0.01), FAST)
    assert res.primary_metric == "r2"
    assert res.test_metrics["r2"] >= 0.99  # also checks the target is un-standardised


def test_default_config_learns() -> None:
    means = 3.0 * np.random.default_rng(4).normal(size=(3, DIM))

    def make(rng, n):
        y = rng.integers(0, 3, n)
        return means[y] + rng.normal(size=(n, DIM)), y

    task = {"kind": "single", "classes": [0, 1, 2]}
    res = probe.probe(task, *_splits(make, sizes=(300, 50, 50)), ProbeConfig())
    assert res.test_metrics["accuracy"] >= 0.99


def test_clip_scores_are_window_means() -> None:
    window_scores = np.array([[0.1, 0.9], [0.3, 0.7], [0.8, 0.2], [0.5, 0.5], [1.0, 0.0]])
    clip = np.array([0, 0, 0, 1, 1])  # clip 0 has 3 windows, clip 1 has 2
    got = np.asarray(probe.clip_mean(window_scores, clip, 2))
    np.testing.assert_allclose(got, [[0.4, 0.6], [0.75, 0.25]], atol=1e-6)
    np.testing.assert_allclose(probe.clip_mean(np.array([1.0, 2.0, 6.0]), np.array([0, 0, 0]), 1), [3.0])
    # Argmax of the mean (clip 0 -> class 1) differs from a majority vote of windows.
    assert probe.evaluate_predictions("single", np.array([1, 0]), got) == {"accuracy": 1.0}


def test_evaluate_predictions_kinds() -> None:
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.1, 0.3]])
    got = probe.evaluate_predictions("multi", labels, scores)
    assert got == {"roc_auc": 1.0, "pr_auc": 1.0}
    y = np.array([1.0, 2.0, 3.0])
    r = probe.evaluate_predictions("regression", y, y[:, None])
    assert r == {"r2": 1.0}


def test_early_stopping_on_the_validation_metric() -> None:
    # Tiny train set of pure noise in many dims: the probe memorises it and the
    # validation metric stops improving after the first epochs.
    rng = np.random.default_rng(5)

    def split(n):
        x = rng.normal(size=(n * 2, 64)).astype(np.float32)
        return Split(x, np.repeat(np.arange(n), 2), rng.integers(0, 2, n))

    task = {"kind": "single", "classes": [0, 1]}
    cfg = ProbeConfig(learning_rates=(1e-2,), max_epochs=500, patience=5, batch_size=8)
    res = probe.probe(task, split(10), split(100), split(20), cfg)
    assert res.epochs < cfg.max_epochs
    assert res.epochs == res.best_epoch + cfg.patience


def test_metric_not_loss_decides_when_validation_is_small() -> None:
    # 30 validation clips, classes separable along one direction among many noisy ones:
    # the validation loss rises early (over-confidence) while accuracy still climbs.
    rng = np.random.default_rng(8)
    direction = rng.normal(size=48)

    def split(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 48)) * 2.0 + np.outer(2 * y - 1, direction) * 0.4
        return Split(x.astype(np.float32), np.arange(n), y)

    task = {"kind": "single", "classes": [0, 1]}
    res = probe.probe(
        task, split(40), split(30), split(200), ProbeConfig(learning_rates=(3e-2,), batch_size=8, patience=10)
    )
    assert res.best_epoch >= 1  # an epoch beat the class prior
    assert res.test_metrics["accuracy"] > 0.6


def _grid_case(kind: str):
    rng = np.random.default_rng(9)
    w = rng.normal(size=(12, 3))

    def split(n):
        x = rng.normal(size=(2 * n, 12)).astype(np.float32)
        z = x.reshape(n, 2, 12).mean(1) @ w
        y = {"single": z.argmax(1), "multi": (z > 0).astype(np.float32), "regression": z[:, 0]}[kind]
        return Split(x, np.repeat(np.arange(n), 2), y)

    task = {"kind": kind, "classes": ["a", "b", "c"]} if kind != "regression" else {"kind": kind}
    return task, split(60), split(20)


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    ("kind", "model"),
    [("multi", "linear"), ("single", "mlp"), pytest.param("single", "linear", marks=SLOW),
     pytest.param("regression", "linear", marks=SLOW), pytest.param("multi", "mlp", marks=SLOW),
     pytest.param("regression", "mlp", marks=SLOW)],
)  # fmt: skip
def test_vmapped_grid_equals_each_setting_fitted_alone(kind: str, model: str) -> None:
    task, train, valid = _grid_case(kind)
    cfg = ProbeConfig(model=model, learning_rates=(1e-3, 3e-2), weight_decays=(0.0, 1e-1), seeds=(0, 1),
                      batch_size=16, max_epochs=15, patience=3, hidden=16)  # fmt: skip
    k, n_out = probe.task_outputs(task)
    train = probe.check_split("train", train, k, n_out, None)
    valid = probe.check_split("valid", valid, k, n_out, 12)
    norm = probe.Standardizer.fit(k, train)
    data = probe.fit_data(k, norm, train, valid)
    spec = probe.spec_for(k, n_out, valid.labels.shape[0], cfg)
    together = probe.fit_grid(spec, cfg.grid(), data)
    assert (
        len(set(np.asarray(together.epochs).tolist())) > 1
        or len(set(np.asarray(together.best_epoch).tolist())) > 1
    )
    for i, setting in enumerate(cfg.grid()):
        alone = probe.fit_grid(spec, [setting], data)
        assert int(alone.best_epoch[0]) == int(together.best_epoch[i])
        assert int(alone.epochs[0]) == int(together.epochs[i])
        np.testing.assert_allclose(float(alone.valid_metric[0]), float(together.valid_metric[i]), atol=1e-5)
        for name in alone.params:
            np.testing.assert_allclose(alone.params[name][0], together.params[name][i], rtol=1e-4, atol=1e-5)


def test_device_roc_auc_matches_numpy() -> None:
    from jaxmusic import metrics

    rng = np.random.default_rng(10)
    y = (rng.random((50, 6)) < 0.3).astype(np.float32)
    y[:, 5] = 1.0  # a tag with no negative: skipped by both
    s = np.round(rng.random((50, 6)), 1)  # ties
    w = np.ones(50, np.float32)
    w[40:] = 0.0
    got = float(probe.masked_macro_roc_auc(y, s, w))
    assert got == pytest.approx(metrics.macro_roc_auc(y[:40], s[:40]), abs=1e-6)


def test_grid_selects_on_validation_and_reports_seeds() -> None:
    task, train, valid = _grid_case("single")
    _, _, test = _grid_case("single")
    cfg = ProbeConfig(learning_rates=(1e-5, 3e-2), seeds=(0, 1, 2), batch_size=16, max_epochs=30)
    res = probe.probe(task, train, valid, test, cfg)
    assert len(res.grid_valid) == 6
    assert res.grid_valid[cfg.grid().index(res.setting)] == max(res.grid_valid)
    assert res.setting["learning_rate"] == 3e-2  # 1e-5 barely moves from the prior
    assert len(res.seed_values) == 3


def test_seed_reproducible() -> None:
    rng = np.random.default_rng(6)

    def mk(n: int) -> Split:
        x = rng.normal(size=(2 * n, 8)).astype(np.float32)
        return Split(x, np.repeat(np.arange(n), 2), rng.normal(size=n))

    splits = (mk(40), mk(20), mk(20))
    cfg = ProbeConfig(max_epochs=20, batch_size=16)
    a = probe.probe({"kind": "regression"}, *splits, cfg)
    b = probe.probe({"kind": "regression"}, *splits, cfg)
    np.testing.assert_array_equal(a.test_scores, b.test_scores)
    assert a.test_metrics == b.test_metrics


def test_invalid_inputs_raise() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    clip = np.repeat(np.arange(3), 2)
    good = Split(x, clip, np.array([0, 1, 0]))
    task = {"kind": "single", "classes": [0, 1]}
    bad_x = x.copy()
    bad_x[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf: re-extract"):
        probe.probe(task, good, good, Split(bad_x, clip, good.labels), ProbeConfig())
    cases = [
        dataclasses.replace(good, window_clip=clip[:-1]),  # length mismatch
        dataclasses.replace(good, labels=np.array([0, 1])),  # clip index out of range
        dataclasses.replace(good, labels=np.array([0, 1, 2])),  # label >= len(classes)
        dataclasses.replace(good, window_embeddings=x[:, :3]),  # dim mismatch vs train
        dataclasses.replace(good, labels=np.array([0, 1, 0, 1])),  # clip 3 has no window
    ]
    for bad in cases:
        with pytest.raises(ValueError):
            probe.probe(task, good, bad, good, ProbeConfig())
    with pytest.raises(ValueError):
        probe.probe({"kind": "multi", "classes": [0, 1]}, good, good, good, ProbeConfig())
    with pytest.raises(ValueError):
        probe.probe({"kind": "ranking"}, good, good, good, ProbeConfig())
    with pytest.raises(ValueError, match="probe model"):
        ProbeConfig(model="svm")
    with pytest.raises(ValueError, match="unknown probe key"):
        ProbeConfig.from_mapping({"learning_rate": 1e-3})
