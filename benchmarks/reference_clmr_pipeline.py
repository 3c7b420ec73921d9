"""The baseline the pipeline benchmark measures against: a CLMR-style CPU data pipeline.

As CLMR's public code feeds its model: each item decodes its audio file, takes a random
crop per view and runs the augmentation chain on the CPU, per example, in NumPy/SciPy
(standing in for torchaudio-augmentations; same transforms, probabilities and ranges).
Written here for measurement only; jaxmusic itself never runs this.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
from scipy import signal


def _pitch_shift(x: np.ndarray, semitones: float, rate: int) -> np.ndarray:
    # Phase-vocoder stretch + resample, as torch-pitch-shift does; librosa implements it.
    import librosa

    return librosa.effects.pitch_shift(x, sr=rate, n_steps=semitones).astype(np.float32)


def _reverb(x: np.ndarray, rng: np.random.Generator, rate: int) -> np.ndarray:
    room, reverberance, damping = rng.uniform(0, 100, 3)
    rt60 = 0.1 + 2.0 * (room / 100) * (0.3 + 0.7 * reverberance / 100)
    n = int(rt60 * rate)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    if damping > 0:
        ir = signal.sosfilt(signal.butter(2, 8000 * (1 - 0.8 * damping / 100), fs=rate, output="sos"), ir)
    wet = signal.fftconvolve(x, ir / np.sqrt(np.sum(ir**2)))[: len(x)]
    return (0.6 * x + 0.4 * wet).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator, rate: int) -> np.ndarray:
    """CLMR's chain after the crop, each transform with its own probability."""
    if rng.random() < 0.8:
        x = -x
    if rng.random() < 0.01:
        x = x + rng.uniform(1e-4, 1e-2) * x.std() * rng.standard_normal(len(x)).astype(np.float32)
    if rng.random() < 0.3:
        x = x * 10 ** (rng.uniform(-20, -1) / 20)
    if rng.random() < 0.8:
        if rng.random() < 0.5:
            sos = signal.butter(4, rng.uniform(2200, 4000), "lowpass", fs=rate, output="sos")
        else:
            sos = signal.butter(4, rng.uniform(200, 1200), "highpass", fs=rate, output="sos")
        x = signal.sosfiltfilt(sos, x).astype(np.float32)
    if rng.random() < 0.3:
        lag = int(rng.choice(np.arange(200, 501, 50)) * rate / 1000)
        x = x + 0.5 * np.concatenate([np.zeros(lag, np.float32), x[:-lag]])
    if rng.random() < 0.6:
        x = _pitch_shift(x, rng.uniform(-7, 7), rate)
    if rng.random() < 0.6:
        x = _reverb(x, rng, rate)
    return x


def load_pair(path: str, crop: int, rng: np.random.Generator) -> np.ndarray:
    """One training item: decode the whole file, crop two views, augment each: [2, crop]."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    views = []
    for _ in range(2):
        start = rng.integers(0, len(audio) - crop + 1)
        views.append(augment(audio[start : start + crop], rng, rate))
    return np.stack(views)
