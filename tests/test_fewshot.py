"""Few-shot episodes keep the paper's invariants: exactly N*K clips, K drawn for each
tag, disjoint across tags, test = every clip carrying one of the N tags, fixed by seed."""

import numpy as np
import pytest

from jaxmusic.evaluate import fewshot


def _tags(seed: int = 0, clips: int = 400, tags: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    freq = np.geomspace(0.3, 0.01, tags)  # a long tail, as MagnaTagATune's top 50
    return (rng.random((clips, tags)) < freq).astype(np.float32)


@pytest.mark.parametrize("n", [2, 5, 15, 35, 50])
@pytest.mark.parametrize("k", [1, 5])
def test_tag_episodes_hold_the_invariants(n: int, k: int) -> None:
    labels = _tags(clips=2000)
    for e in range(3):
        ep = fewshot.tag_episode(labels, n, k, seed=0, episode=e)
        assert ep.classes.shape == (n,) and len(set(ep.classes.tolist())) == n
        assert ep.train.shape == (n * k,)
        assert len(set(ep.train.tolist())) == n * k  # disjoint across tags
        for i, tag in enumerate(ep.classes):
            drawn = ep.train[i * k : (i + 1) * k]
            assert labels[drawn, tag].all()  # the K clips of a tag carry it
        test = fewshot.episode_test(labels, ep.classes)
        carrying = np.flatnonzero(labels[:, ep.classes].any(axis=1))
        np.testing.assert_array_equal(test, carrying)


def test_episodes_are_fixed_by_seed_and_differ_between_episodes() -> None:
    labels = _tags()
    a = fewshot.tag_episode(labels, 5, 5, seed=3, episode=0)
    b = fewshot.tag_episode(labels, 5, 5, seed=3, episode=0)
    c = fewshot.tag_episode(labels, 5, 5, seed=3, episode=1)
    d = fewshot.tag_episode(labels, 5, 5, seed=4, episode=0)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.classes, b.classes)
    assert not np.array_equal(a.train, c.train)
    assert not np.array_equal(a.train, d.train)


def test_infeasible_requests_are_refused_with_the_reason() -> None:
    labels = _tags(clips=100)
    with pytest.raises(ValueError, match="few-shot N=50 K=20"):
        fewshot.tag_episode(labels, 50, 20, seed=0, episode=0)
    # Two tags carried by the same 3 clips: K=2 for both cannot be disjoint.
    shared = np.zeros((6, 2), np.float32)
    shared[:3] = 1
    with pytest.raises(ValueError, match="no disjoint draw"):
        fewshot.tag_episode(shared, 2, 2, seed=0, episode=0)


def test_class_episodes() -> None:
    labels = np.random.default_rng(0).integers(0, 10, 300)
    ep = fewshot.class_episode(labels, 5, 3, seed=0, episode=0)
    assert ep.train.shape == (15,) and len(set(ep.train.tolist())) == 15
    assert sorted(np.bincount(labels[ep.train], minlength=10)[ep.classes].tolist()) == [3] * 5
    test = fewshot.episode_test(labels, ep.classes)
    assert set(labels[test].tolist()) == set(ep.classes.tolist())
