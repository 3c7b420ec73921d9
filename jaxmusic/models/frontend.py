"""Log-mel frontend computed on the device (STFT + mel filterbank + power to dB).

Shared by every mel-spectrogram encoder through the `model.logmel` config section.
`LogMel` reproduces, in float32 on the accelerator,

    S = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                       n_mels=n_mels, fmin=f_min, fmax=f_max, center=True,
                                       pad_mode="constant", power=2.0)
    librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)

that is: zero-padded centred frames, periodic Hann window, rfft, |X|^2, librosa's Slaney
mel filterbank (built once in numpy at trace time, a constant of the program; librosa is
never called per example), 10 * log10(max(S, 1e-10)). Output [batch, frames, n_mels]
with frames = 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop_length.

Stated tolerance (tests/test_frontend.py checks it on noise, sines and synthetic music at
three parameter sets): against librosa on the same float32 audio, the absolute error is
below 0.01 dB on every bin whose librosa value lies within 80 dB of the clip's maximum
(measured worst case 0.004 dB, on a pure sine; the far tail below that is float32 FFT round-off and
is not specified).

The matmuls run at `Precision.HIGHEST`: GPUs and TPUs otherwise use TF32/bf16 passes for
float32 matmuls, which costs about 0.1 dB.

SpecAugment-style masking (train=True only, when `time_masks` or `freq_masks` > 0):
each example gets `time_masks` masks of width uniform in [0, time_mask_frames] frames
and `freq_masks` masks of width uniform in [0, freq_mask_bins] bins, at uniform
positions, drawn from the "specaugment" rng stream. Masked values are set to the
example's mean log-mel value (in dB), so a mask carries no energy cue and the
encoders' input normalisation sees an ordinary value.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

AMIN = 1e-10  # power floor before the log, as librosa.power_to_db's default


def default_config() -> ml_collections.ConfigDict:
    """`model.logmel`: Won et al. 2020's short-chunk settings (16 kHz, 128 bins)."""
    c = ml_collections.ConfigDict()
    c.sample_rate = 16000  # must equal the dataset's; checked before training
    c.n_fft = 512
    c.hop_length = 256
    c.n_mels = 128
    c.f_min = 0.0
    c.f_max = 8000.0
    # SpecAugment-style masking, applied in training only (0 masks: off).
    c.time_masks = 0
    c.time_mask_frames = 0
    c.freq_masks = 0
    c.freq_mask_bins = 0
    return c


def num_frames(samples: int, n_fft: int, hop_length: int) -> int:
    """Frames that centred (n_fft // 2 zero-padded) STFT framing yields for `samples`."""
    return 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop_length


def samples_for_frames(frames: int, n_fft: int, hop_length: int) -> int:
    """The fewest samples (at least 1) for which `num_frames` is >= `frames`."""
    return max(1, (frames - 1) * hop_length + n_fft - 2 * (n_fft // 2))


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """librosa's Slaney mel filterbank, transposed: float32 [n_fft // 2 + 1, n_mels] (cached; do not mutate)."""
    import librosa  # build time only: keeps librosa (and numba) out of import and the hot path

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


def _band_masks(key: jax.Array, batch: int, count: int, max_width: int, size: int) -> jax.Array:
    """[batch, size] booleans: the union of `count` bands per row, widths uniform in [0, max_width]."""
    k_width, k_start = jax.random.split(key)
    max_width = min(max_width, size)
    width = jax.random.randint(k_width, (batch, count, 1), 0, max_width + 1)
    start = jax.random.randint(k_start, (batch, count, 1), 0, size - width + 1)
    pos = jnp.arange(size)
    return jnp.any((pos >= start) & (pos < start + width), axis=1)


class LogMel(nn.Module):
    """Mono audio [batch, samples] -> log-mel power in dB, float32 [batch, frames, n_mels]."""

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 8000.0
    time_masks: int = 0
    time_mask_frames: int = 0
    freq_masks: int = 0
    freq_mask_bins: int = 0

    def frames(self, samples: int) -> int:
        """Frames this frontend yields for an input of `samples` samples."""
        return num_frames(samples, self.n_fft, self.hop_length)

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool = False) -> jax.Array:
        if audio.ndim != 2 or audio.shape[-1] < 1:
            raise ValueError(f"LogMel takes mono audio [batch, samples >= 1], got shape {audio.shape}")
        n_frames = self.frames(audio.shape[-1])
        x = jnp.pad(audio.astype(jnp.float32), ((0, 0), (self.n_fft // 2, self.n_fft // 2)))
        # Static gather indices: [frames, n_fft]; works for any hop, unlike a reshape.
        idx = np.arange(n_frames)[:, None] * self.hop_length + np.arange(self.n_fft)[None, :]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.n_fft) / self.n_fft)  # periodic Hann
        spec = jnp.fft.rfft(x[:, idx] * window.astype(np.float32), axis=-1)
        power = jnp.square(spec.real) + jnp.square(spec.imag)
        fb = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max)
        mel = jnp.matmul(power, fb, precision=jax.lax.Precision.HIGHEST)
        db = 10.0 * jnp.log10(jnp.maximum(mel, AMIN))
        if train and (self.time_masks > 0 or self.freq_masks > 0):
            db = self._mask(db)
        return db

    def _mask(self, db: jax.Array) -> jax.Array:
        batch, frames, bins = db.shape
        k_time, k_freq = jax.random.split(self.make_rng("specaugment"))
        masked = jnp.zeros((batch, frames, bins), dtype=bool)
        if self.time_masks > 0:
            masked |= _band_masks(k_time, batch, self.time_masks, self.time_mask_frames, frames)[:, :, None]
        if self.freq_masks > 0:
            masked |= _band_masks(k_freq, batch, self.freq_masks, self.freq_mask_bins, bins)[:, None, :]
        mean = jnp.mean(db, axis=(1, 2), keepdims=True)
        return jnp.where(masked, mean, db)


def logmel_from_config(model: ml_collections.ConfigDict) -> LogMel:
    """The `LogMel` of `model.logmel`."""
    c = model.logmel
    return LogMel(
        sample_rate=int(c.sample_rate),
        n_fft=int(c.n_fft),
        hop_length=int(c.hop_length),
        n_mels=int(c.n_mels),
        f_min=float(c.f_min),
        f_max=float(c.f_max),
        time_masks=int(c.time_masks),
        time_mask_frames=int(c.time_mask_frames),
        freq_masks=int(c.freq_masks),
        freq_mask_bins=int(c.freq_mask_bins),
    )
