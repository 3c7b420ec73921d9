"""Few-shot episodes, drawn as Ma & Lerch (2024) draw them.

Multi-label (`tag_episode`): N tags, then K training clips per tag drawn without
replacement and disjoint across tags, so an episode trains on exactly N*K clips, each
carrying its full multi-hot label over the N tags (a clip drawn for one tag may carry
others); it is tested on every test clip carrying at least one of the N tags.
Single-label (`class_episode`): N classes, K clips of each (the support set of a
nearest-centroid classifier), tested on every test clip of those classes.

Everything is fixed by the seed: episode e of (N, K) is drawn from
`default_rng([seed, N, K, e])`, so adding an N or a K to a suite changes no other
episode.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_ATTEMPTS = 100


@dataclasses.dataclass(frozen=True)
class Episode:
    classes: np.ndarray  # [N] the tags (or classes) of the episode, as column indices
    train: np.ndarray  # [N*K] training clip indices, grouped by the class they were drawn for


def tag_episode(labels: np.ndarray, n_tags: int, k_shots: int, seed: int, episode: int) -> Episode:
    """One N-tag K-shot episode over multi-hot train labels [clips, tags] (see module)."""
    labels = np.asarray(labels) > 0
    rng = np.random.default_rng([seed, n_tags, k_shots, episode])
    eligible = np.flatnonzero(labels.sum(0) >= k_shots)
    if eligible.size < n_tags:
        raise ValueError(
            f"few-shot N={n_tags} K={k_shots}: only {eligible.size} tags have {k_shots} training clips"
        )
    # Disjointness can make a draw of tags infeasible (two rare tags sharing their clips):
    # redraw, from the same seeded stream, rather than give an episode fewer clips.
    for _ in range(_ATTEMPTS):
        tags = rng.choice(eligible, n_tags, replace=False)
        used = np.zeros(labels.shape[0], bool)
        picked = []
        for tag in tags:
            pool = np.flatnonzero(labels[:, tag] & ~used)
            if pool.size < k_shots:
                break
            chosen = rng.choice(pool, k_shots, replace=False)
            used[chosen] = True
            picked.append(chosen)
        else:
            return Episode(np.asarray(tags), np.concatenate(picked))
    raise ValueError(f"few-shot N={n_tags} K={k_shots}: no disjoint draw found in {_ATTEMPTS} attempts")


def class_episode(labels: np.ndarray, n_ways: int, k_shots: int, seed: int, episode: int) -> Episode:
    """One N-way K-shot episode over integer train labels [clips]."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, n_ways, k_shots, episode])
    counts = np.bincount(labels)
    eligible = np.flatnonzero(counts >= k_shots)
    if eligible.size < n_ways:
        raise ValueError(
            f"few-shot {n_ways}-way {k_shots}-shot: only {eligible.size} classes have {k_shots} clips"
        )
    classes = np.sort(rng.choice(eligible, n_ways, replace=False))
    train = np.concatenate([rng.choice(np.flatnonzero(labels == c), k_shots, replace=False) for c in classes])
    return Episode(classes, train)


def episode_test(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Test clips of an episode: those carrying at least one of its tags (multi-hot
    labels) or one of its classes (integer labels)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return np.flatnonzero((labels[:, classes] > 0).any(axis=1))
    return np.flatnonzero(np.isin(labels, classes))
