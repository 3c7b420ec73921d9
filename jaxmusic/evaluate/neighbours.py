"""Training-free probes: k-nearest neighbours and nearest centroid, on clip embeddings.

Clip embeddings (the mean of a clip's windows) are standardised with the train split's
statistics and L2-normalised, so similarity is cosine similarity. k-NN scores a clip
by the mean label of its k most similar train clips (the share of votes per class,
the frequency of each tag, the mean value); nearest centroid by its cosine similarity
to the mean of each class's (or tag's) train clips. Neither has a hyper-parameter
fitted on labels beyond k, which is why newer suites report them beside trained probes.
"""

from __future__ import annotations

import numpy as np

from jaxmusic.evaluate.extract import clip_mean
from jaxmusic.evaluate.probe import Split

_CHUNK = 1024  # test rows per similarity block: bounds memory for large splits


def clip_embeddings(split: Split) -> np.ndarray:
    """[N, D] mean of the windows of each clip."""
    return clip_mean(split.window_embeddings, split.window_clip, split.labels.shape[0]).astype(np.float64)


def _unit(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (x - mean) / std
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _targets(kind: str, n_out: int, labels: np.ndarray) -> np.ndarray:
    if kind == "single":
        return np.eye(n_out)[labels]
    return labels.astype(np.float64).reshape(labels.shape[0], -1)


def knn_scores(kind: str, n_out: int, train: Split, test: Split, k: int) -> np.ndarray:
    """Scores of the test clips by their k nearest train clips ([n, C], or [n] for regression)."""
    x_tr = clip_embeddings(train)
    mean, std = x_tr.mean(0), np.maximum(x_tr.std(0), 1e-6)
    a, b = _unit(x_tr, mean, std), _unit(clip_embeddings(test), mean, std)
    k = min(k, a.shape[0])
    y = _targets(kind, n_out, train.labels)
    out = []
    for lo in range(0, b.shape[0], _CHUNK):
        sim = b[lo : lo + _CHUNK] @ a.T
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out.append(y[nearest].mean(axis=1))
    scores = np.concatenate(out)
    return scores[:, 0] if kind == "regression" else scores


def centroid_scores(kind: str, n_out: int, train: Split, test: Split) -> np.ndarray:
    """Cosine similarity of each test clip to each class's (or tag's) train centroid [n, C]."""
    if kind == "regression":
        raise ValueError("nearest centroid needs classes or tags; a regression task has neither")
    x_tr = clip_embeddings(train)
    mean, std = x_tr.mean(0), np.maximum(x_tr.std(0), 1e-6)
    a, b = _unit(x_tr, mean, std), _unit(clip_embeddings(test), mean, std)
    y = _targets(kind, n_out, train.labels)
    counts = y.sum(0)
    centroids = (y.T @ a) / np.maximum(counts, 1)[:, None]
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    scores = b @ centroids.T
    # A class with no train clip can never be predicted.
    scores[:, counts == 0] = -np.inf if kind == "single" else 0.0
    return scores
