"""On-device audio augmentation: CLMR's chain, per example, inside the train step.

Each transform is applied to each view of each example independently, with its own
probability, from a key split off the step's key; so a run is reproducible from
(seed, step) and a resumed run draws the same augmentations. Running on the
accelerator keeps data workers to decoding and cropping: at accelerator speed a
CPU-side chain could not keep up (see the design notes in the README).

Implemented here, in CLMR's order: polarity inversion, white noise, gain, and a
high- or low-pass filter. The filter is zero-phase with a 4th-order Butterworth
magnitude response applied in the frequency domain: one FFT per view, no
sequential recursion, so it vectorises on any accelerator.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

FILTER_ORDER = 4


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """Probabilities and ranges of the chain (hashable, so it can be static under jit)."""

    sample_rate: int
    polarity_p: float = 0.8
    noise_p: float = 0.01
    noise_std: tuple[float, float] = (1e-4, 1e-2)
    gain_p: float = 0.3
    gain_db: tuple[float, float] = (-20.0, -1.0)
    filter_p: float = 0.8
    lowpass_hz: tuple[float, float] = (2200.0, 4000.0)
    highpass_hz: tuple[float, float] = (200.0, 1200.0)

    @classmethod
    def from_config(cls, cfg: ml_collections.ConfigDict, sample_rate: int) -> AugmentSpec:
        """Build from a config's `augment` section."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"sample_rate"}
        values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in cfg.items() if k in fields}
        return cls(sample_rate=sample_rate, **values)


def polarity(x: jax.Array) -> jax.Array:
    """Invert the waveform."""
    return -x


def white_noise(x: jax.Array, key: jax.Array, relative_std: jax.Array) -> jax.Array:
    """Add Gaussian noise whose std is `relative_std` times the signal's."""
    return x + relative_std * jnp.std(x) * jax.random.normal(key, x.shape, x.dtype)


def gain(x: jax.Array, db: jax.Array) -> jax.Array:
    """Scale by `db` decibels."""
    return x * 10.0 ** (db / 20.0)


def butterworth_filter(
    x: jax.Array, cutoff_hz: jax.Array, sample_rate: int, highpass: jax.Array
) -> jax.Array:
    """Zero-phase low- or high-pass filter with a Butterworth magnitude response."""
    spectrum = jnp.fft.rfft(x)
    freqs = jnp.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate)
    ratio = jnp.where(highpass, cutoff_hz / jnp.maximum(freqs, 1e-6), freqs / cutoff_hz)
    response = 1.0 / jnp.sqrt(1.0 + ratio ** (2 * FILTER_ORDER))
    return jnp.fft.irfft(spectrum * response, n=x.shape[-1]).astype(x.dtype)


def augment_one(x: jax.Array, key: jax.Array, spec: AugmentSpec) -> jax.Array:
    """Apply the chain to one view [samples]."""
    keys = jax.random.split(key, 9)

    def coin(k: jax.Array, p: float) -> jax.Array:
        return jax.random.uniform(k) < p

    def uniform(k: jax.Array, bounds: tuple[float, float]) -> jax.Array:
        return jax.random.uniform(k, minval=bounds[0], maxval=bounds[1])

    x = jnp.where(coin(keys[0], spec.polarity_p), polarity(x), x)
    x = jnp.where(coin(keys[1], spec.noise_p), white_noise(x, keys[2], uniform(keys[3], spec.noise_std)), x)
    x = jnp.where(coin(keys[4], spec.gain_p), gain(x, uniform(keys[5], spec.gain_db)), x)
    highpass = jax.random.bernoulli(keys[6])
    nyquist = spec.sample_rate / 2
    low = jnp.minimum(uniform(keys[7], spec.lowpass_hz), nyquist)
    high = jnp.minimum(uniform(keys[8], spec.highpass_hz), nyquist)
    filtered = butterworth_filter(x, jnp.where(highpass, high, low), spec.sample_rate, highpass)
    # The filter coin reuses the choice key's sibling so adding transforms later does
    # not shift the draws of the ones before them.
    return jnp.where(coin(jax.random.fold_in(keys[6], 1), spec.filter_p), filtered, x)


def augment_batch(views: jax.Array, key: jax.Array, spec: AugmentSpec) -> jax.Array:
    """Augment every view of every example independently: [batch, views, samples]."""
    b, v, _ = views.shape
    keys = jax.random.split(key, b * v).reshape(b, v, -1)
    return jax.vmap(jax.vmap(lambda x, k: augment_one(x, k, spec)))(views, keys)
