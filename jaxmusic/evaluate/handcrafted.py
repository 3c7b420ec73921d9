"""Handcrafted-feature baselines: librosa features summarised per window.

Each frame-level feature is computed on one window (librosa's STFT defaults: n_fft
2048, hop 512) and summarised over time by its mean and standard deviation, so every
window becomes one fixed-length vector, the features concatenated in the order asked
for. These vectors stand in for an encoder's embeddings in the linear-probe
evaluation, giving the floor a learned representation should beat.

- ``mfcc``: 13 MFCCs with their deltas and delta-deltas (39 rows).
- ``chroma``: 12-bin ``chroma_stft``, referenced to A440 rather than a tuning
  estimated per window, so the windows of a clip share one pitch grid (and silence
  has no tuning to estimate).
- ``cqt``: constant-Q magnitude in dB from C1, 12 bins per octave: librosa's 84 bins
  (C1-B7) where the top filter's passband fits below Nyquist, otherwise as many
  semitones as fit (83 at 8 kHz).
- ``spectral_contrast``: librosa's 6 octave bands plus the residual band (7 rows),
  from librosa's fmin of 200 Hz where every band starts below Nyquist (sample rates
  above 12.8 kHz), otherwise from Nyquist / 2**6 so the top octave ends at Nyquist
  (62.5 Hz at 8 kHz).

`HandcraftedEmbedder` applies them to int16 windows, optionally in worker processes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import multiprocessing
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType
from typing import Any

import librosa
import numpy as np
from tqdm import tqdm

__all__ = [
    "FEATURES",
    "MIN_WINDOW_SAMPLES",
    "Feature",
    "HandcraftedEmbedder",
    "contrast_fmin",
    "cqt_bins",
    "feature_dims",
    "window_features",
]

# The MFCC deltas need 9 STFT frames (librosa's default width), i.e. 1 + T // 512 >= 9;
# this also keeps every window at least one n_fft long.
MIN_WINDOW_SAMPLES = 4096

# Part of the cache key: bump whenever a feature's definition changes.
_VERSION = 1

_N_MFCC = 13
_CQT_MAX_BINS = 84
_CONTRAST_BANDS = 6
_CONTRAST_FMIN = 200.0
_CHUNKS_PER_WORKER = 4
_MAX_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class Feature:
    """A frame-level feature: `rows(sample_rate)` rows of `frames(audio, sample_rate)`
    (float [rows, frames])."""

    rows: Callable[[int], int]
    frames: Callable[[np.ndarray, int], np.ndarray]


def _mfcc(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    mfcc = librosa.feature.mfcc(y=audio, sr=sample_rate, n_mfcc=_N_MFCC)
    return np.concatenate([mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)], axis=0)


def _chroma(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return librosa.feature.chroma_stft(y=audio, sr=sample_rate, tuning=0.0)


@functools.lru_cache
def cqt_bins(sample_rate: int) -> int:
    """CQT bins from C1: 84 (librosa's default, C1-B7) or, where the top filter's
    passband would cross Nyquist, the most semitones whose passbands stay below it."""
    fmin = librosa.note_to_hz("C1")
    for n_bins in range(_CQT_MAX_BINS, 1, -1):
        freqs = librosa.cqt_frequencies(n_bins, fmin=fmin)
        # The same cutoff librosa.cqt checks against Nyquist.
        _, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sample_rate)
        if cutoff < sample_rate / 2:
            return n_bins
    raise ValueError(f"sample rate {sample_rate} Hz is too low for a constant-Q transform from C1")


def _cqt(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    with warnings.catch_warnings():
        # The CQT halves the signal once per octave, so for short windows at low rates
        # (1 s at 8 kHz: 125 samples) the lowest octave is shorter than its FFT; the
        # centred STFT zero-pads it, which is what we want.
        warnings.filterwarnings(
            "ignore", message=r"n_fft=\d+ is too large for input signal of length=\d+", category=UserWarning
        )
        cqt = librosa.cqt(audio, sr=sample_rate, n_bins=cqt_bins(sample_rate))
    return librosa.amplitude_to_db(np.abs(cqt), ref=1.0)


def contrast_fmin(sample_rate: int) -> float:
    """Lower edge of spectral contrast's first octave band: librosa's 200 Hz where all
    bands start below Nyquist, otherwise Nyquist / 2**6 so the top octave ends there."""
    nyquist = sample_rate / 2
    if nyquist > _CONTRAST_FMIN * 2 ** (_CONTRAST_BANDS - 1):
        return _CONTRAST_FMIN
    return nyquist / 2**_CONTRAST_BANDS


def _contrast(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return librosa.feature.spectral_contrast(
        y=audio, sr=sample_rate, fmin=contrast_fmin(sample_rate), n_bands=_CONTRAST_BANDS
    )


FEATURES: Mapping[str, Feature] = {
    "mfcc": Feature(lambda sr: 3 * _N_MFCC, _mfcc),
    "chroma": Feature(lambda sr: 12, _chroma),
    "cqt": Feature(cqt_bins, _cqt),
    "spectral_contrast": Feature(lambda sr: _CONTRAST_BANDS + 1, _contrast),
}


def _check_names(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown handcrafted features {unknown}; known: {sorted(FEATURES)}")
    if not names:
        raise ValueError(f"no handcrafted features given; known: {sorted(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"handcrafted features repeated: {list(names)}")
    return names


def _check_length(samples: int) -> None:
    if samples < MIN_WINDOW_SAMPLES:
        raise ValueError(f"windows of {samples} samples are too short: at least {MIN_WINDOW_SAMPLES} needed")


def feature_dims(names: Sequence[str], sample_rate: int) -> int:
    """Length of `window_features`' vector: mean and std of each feature's rows."""
    return sum(2 * FEATURES[n].rows(sample_rate) for n in _check_names(names))


def window_features(audio: np.ndarray, sample_rate: int, names: Sequence[str]) -> np.ndarray:
    """float32 [feature_dims(names, sample_rate)] of one float32 window [T]: per
    feature, the mean then the std over time of each row, features in `names` order."""
    names = _check_names(names)
    _check_length(audio.shape[-1])
    parts = []
    for name in names:
        frames = FEATURES[name].frames(audio, sample_rate).astype(np.float64)
        parts += [frames.mean(axis=1), frames.std(axis=1)]
    return np.concatenate(parts).astype(np.float32)


def _embed_rows(audio: np.ndarray, sample_rate: int, names: tuple[str, ...]) -> np.ndarray:
    """float32 [N, D] of int16 windows [N, T] (runs in the worker processes)."""
    return np.stack([window_features(_dequantize(x), sample_rate, names) for x in audio])


def _dequantize(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float32) / 32768.0


class HandcraftedEmbedder:
    """Embeds int16 windows [N, window_samples] as handcrafted-feature vectors [N, dim].

    With `workers` > 1 the windows are computed in that many spawned processes (a
    pool kept for the embedder's life: release it with `close()` or a `with` block).
    Spawned, not forked: forking a process whose threads (JAX's, say) may hold locks
    can deadlock. The spawned workers re-import the caller's main module, which must
    therefore guard its work with ``if __name__ == "__main__":``.
    """

    def __init__(
        self,
        features: Sequence[str],
        sample_rate: int,
        window_samples: int,
        workers: int = 1,
        progress: bool = False,
    ) -> None:
        self.features = _check_names(features)
        _check_length(window_samples)
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.name = "handcrafted-" + "+".join(self.features)
        self.sample_rate = sample_rate
        self.window_samples = window_samples
        self.dim = feature_dims(self.features, sample_rate)
        self.workers = workers
        self.progress = progress
        # Worker processes start on the first parallel `embed`, not here.
        self._pool = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 1
            else None
        )

    def identity(self) -> dict[str, Any]:
        """Everything the embeddings depend on, as a JSON-able cache key."""
        return {
            "kind": "handcrafted",
            "version": _VERSION,
            "features": list(self.features),
            "sample_rate": self.sample_rate,
            "window_samples": self.window_samples,
            "librosa": librosa.__version__,
        }

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """float32 [N, dim] of int16 windows [N, window_samples]."""
        if audio.dtype != np.int16 or audio.ndim != 2 or audio.shape[1] != self.window_samples:
            raise ValueError(
                f"expected int16 [N, {self.window_samples}] windows, got {audio.dtype} {list(audio.shape)}"
            )
        if self.workers > 1 and self._pool is None:
            raise RuntimeError(f"{self.name} embedder used after close()")
        out = np.zeros((len(audio), self.dim), np.float32)
        with tqdm(total=len(audio), desc=self.name, unit="window", disable=not self.progress) as bar:
            if self._pool is None:
                for i, window in enumerate(audio):
                    out[i] = window_features(_dequantize(window), self.sample_rate, self.features)
                    bar.update(1)
                return out
            # A few chunks per worker balance the load while each chunk stays long
            # enough (a window takes tens of ms) for the pickling round trip not to matter.
            size = max(1, min(_MAX_CHUNK, math.ceil(len(audio) / (_CHUNKS_PER_WORKER * self.workers))))
            starts = range(0, len(audio), size)
            futures = [
                self._pool.submit(_embed_rows, audio[s : s + size], self.sample_rate, self.features)
                for s in starts
            ]
            try:
                for s, future in zip(starts, futures, strict=True):
                    rows = future.result()
                    out[s : s + len(rows)] = rows
                    bar.update(len(rows))
            finally:
                for future in futures:
                    future.cancel()
        return out

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> HandcraftedEmbedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
