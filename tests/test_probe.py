"""Linear probe: learns separable data, averages windows per clip, stops early, validates."""

import dataclasses

import numpy as np
import pytest

from jaxmusic.evaluate import probe
from jaxmusic.evaluate.probe import ProbeConfig, Split

DIM, WINDOWS_PER_CLIP = 32, 3
FAST = ProbeConfig(learning_rate=1e-2, max_epochs=100)


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
    res = probe.train_probe(task, *_splits(make), FAST)
    assert res.primary_metric == "accuracy"
    assert res.metrics["accuracy"] >= 0.99
    assert res.valid_metrics["accuracy"] >= 0.99
    assert 1 <= res.best_epoch <= res.epochs_run <= FAST.max_epochs


def test_multi_label_separable() -> None:
    n_cls = 5
    mixing = np.random.default_rng(2).normal(size=(n_cls, DIM))

    def make(rng, n):
        signs = rng.choice([-1.0, 1.0], size=(n, n_cls))  # margin: latent is +-1
        feats = signs @ mixing + 0.1 * rng.normal(size=(n, DIM))
        return feats, (signs > 0).astype(np.float32)

    task = {"kind": "multi", "classes": [f"tag{i}" for i in range(n_cls)]}
    res = probe.train_probe(task, *_splits(make), FAST)
    assert res.primary_metric == "roc_auc"
    assert set(res.metrics) == {"roc_auc", "pr_auc"}
    assert res.metrics["roc_auc"] >= 0.99
    assert res.metrics["pr_auc"] >= 0.99


def test_regression_linear_target() -> None:
    beta = np.random.default_rng(3).normal(size=DIM)

    def make(rng, n):
        feats = rng.normal(size=(n, DIM))
        return feats, (10.0 + 5.0 * feats @ beta + 0.01 * rng.normal(size=n))

    task = {"kind": "regression"}
    res = probe.train_probe(task, *_splits(make, noise=0.01), FAST)
    assert res.primary_metric == "r2"
    assert res.metrics["r2"] >= 0.99  # also checks the target is un-standardised


def test_default_config_learns() -> None:
    means = 3.0 * np.random.default_rng(4).normal(size=(3, DIM))

    def make(rng, n):
        y = rng.integers(0, 3, n)
        return means[y] + rng.normal(size=(n, DIM)), y

    task = {"kind": "single", "classes": [0, 1, 2]}
    res = probe.train_probe(task, *_splits(make, sizes=(300, 50, 50)))
    assert res.metrics["accuracy"] >= 0.99


def test_clip_scores_are_window_means() -> None:
    window_scores = np.array([[0.1, 0.9], [0.3, 0.7], [0.8, 0.2], [0.5, 0.5], [1.0, 0.0]])
    clip = np.array([0, 0, 0, 1, 1])  # clip 0 has 3 windows, clip 1 has 2
    got = probe.aggregate_clip_scores(window_scores, clip, 2)
    np.testing.assert_allclose(got, [[0.4, 0.6], [0.75, 0.25]], atol=1e-15)
    np.testing.assert_allclose(
        probe.aggregate_clip_scores(np.array([1.0, 2.0, 6.0]), np.array([0, 0, 0]), 1),
        [3.0],
    )
    # Argmax of the mean (clip 0 -> class 1) differs from a majority vote of windows.
    task = {"kind": "single", "classes": ["x", "y"]}
    assert probe.evaluate_predictions(task, np.array([1, 0]), got) == {"accuracy": 1.0}
    with pytest.raises(ValueError):
        probe.aggregate_clip_scores(window_scores, clip, 3)  # clip 2 has no windows


def test_evaluate_predictions_kinds() -> None:
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.1, 0.3]])
    got = probe.evaluate_predictions({"kind": "multi", "classes": [0, 1]}, labels, scores)
    assert got == {"roc_auc": 1.0, "pr_auc": 1.0}
    y = np.array([1.0, 2.0, 3.0])
    r = probe.evaluate_predictions({"kind": "regression"}, y, y[:, None])
    assert r == {"r2": 1.0}


def test_early_stopping_on_rising_valid_loss() -> None:
    # Tiny train set of pure noise in many dims: the probe memorises it and the
    # validation loss rises after the first epochs.
    rng = np.random.default_rng(5)

    def split(n):
        x = rng.normal(size=(n * 2, 64)).astype(np.float32)
        return Split(x, np.repeat(np.arange(n), 2), rng.integers(0, 2, n))

    task = {"kind": "single", "classes": [0, 1]}
    cfg = ProbeConfig(learning_rate=1e-2, max_epochs=500, patience=5, batch_size=8)
    res = probe.train_probe(task, split(10), split(100), split(20), cfg)
    assert res.epochs_run < cfg.max_epochs
    assert res.epochs_run == res.best_epoch + cfg.patience


def test_seed_reproducible() -> None:
    rng = np.random.default_rng(6)

    def mk(n: int) -> Split:
        x = rng.normal(size=(2 * n, 8)).astype(np.float32)
        return Split(x, np.repeat(np.arange(n), 2), rng.normal(size=n))

    splits = (mk(40), mk(20), mk(20))
    cfg = ProbeConfig(max_epochs=20, batch_size=16)
    a = probe.train_probe({"kind": "regression"}, *splits, cfg)
    b = probe.train_probe({"kind": "regression"}, *splits, cfg)
    assert a == b


def test_invalid_inputs_raise() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    clip = np.repeat(np.arange(3), 2)
    good = Split(x, clip, np.array([0, 1, 0]))
    task = {"kind": "single", "classes": [0, 1]}
    bad_x = x.copy()
    bad_x[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf: re-run embed"):
        probe.train_probe(task, good, good, Split(bad_x, clip, good.labels))
    cases = [
        dataclasses.replace(good, window_clip=clip[:-1]),  # length mismatch
        dataclasses.replace(good, labels=np.array([0, 1])),  # clip index out of range
        dataclasses.replace(good, labels=np.array([0, 1, 2])),  # label >= len(classes)
        dataclasses.replace(good, window_embeddings=x[:, :3]),  # dim mismatch vs train
        dataclasses.replace(good, labels=np.array([0, 1, 0, 1])),  # clip 3 has no window
    ]
    for bad in cases:
        with pytest.raises(ValueError):
            probe.train_probe(task, good, bad, good)
    with pytest.raises(ValueError):
        probe.train_probe({"kind": "multi", "classes": [0, 1]}, good, good, good)
    with pytest.raises(ValueError):
        probe.train_probe({"kind": "ranking"}, good, good, good)
