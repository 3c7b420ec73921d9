import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic.augment import AugmentSpec, augment_batch, butterworth_filter

SR = 16000
OFF = AugmentSpec(sample_rate=SR, polarity_p=0.0, noise_p=0.0, gain_p=0.0, filter_p=0.0)


def tone(freq, n=4096):
    return np.sin(2 * np.pi * freq * np.arange(n) / SR).astype(np.float32)


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x), axis=-1)))


def batch_of(x, b=64):
    return jnp.broadcast_to(jnp.asarray(x), (b, 2, x.shape[-1]))


def run(spec, views, seed=0):
    return np.asarray(jax.jit(augment_batch, static_argnums=2)(views, jax.random.PRNGKey(seed), spec))


def test_probability_zero_leaves_audio_unchanged():
    x = batch_of(tone(440))
    np.testing.assert_array_equal(run(OFF, x), np.asarray(x))


def test_polarity_always_and_never():
    x = batch_of(tone(440))
    np.testing.assert_array_equal(run(dataclasses.replace(OFF, polarity_p=1.0), x), -np.asarray(x))


def test_polarity_probability_is_per_example():
    x = batch_of(tone(440), b=400)
    out = run(dataclasses.replace(OFF, polarity_p=0.8), x)
    flipped = np.all(out == -np.asarray(x), axis=-1)
    assert 0.72 < flipped.mean() < 0.88
    assert not np.all(flipped[:, 0] == flipped[:, 1])  # views drawn independently


def test_gain_moves_rms_by_a_drawn_db_inside_the_range():
    x = batch_of(tone(440))
    out = run(dataclasses.replace(OFF, gain_p=1.0), x)
    change = rms_db(out) - rms_db(np.asarray(x))
    assert np.all(change >= -20.0 - 1e-3) and np.all(change <= -1.0 + 1e-3)
    assert change.std() > 3.0  # drawn per view, not once per batch
    fixed = run(dataclasses.replace(OFF, gain_p=1.0, gain_db=(-6.0, -6.0)), x)
    np.testing.assert_allclose(rms_db(fixed) - rms_db(np.asarray(x)), -6.0, atol=1e-3)


def test_noise_adds_the_drawn_relative_level():
    x = batch_of(tone(440))
    out = run(dataclasses.replace(OFF, noise_p=1.0, noise_std=(0.1, 0.1)), x)
    added = out - np.asarray(x)
    np.testing.assert_allclose(added.std(axis=-1) / np.asarray(x).std(axis=-1), 0.1, rtol=0.1)


@pytest.mark.parametrize("highpass, stop_hz, pass_hz", [(False, 3000.0, 200.0), (True, 150.0, 3000.0)])
def test_filter_attenuates_beyond_cutoff(highpass, stop_hz, pass_hz):
    cutoff = 1200.0 if highpass else 1000.0
    stop = butterworth_filter(jnp.asarray(tone(stop_hz)), cutoff, SR, highpass)
    passed = butterworth_filter(jnp.asarray(tone(pass_hz)), cutoff, SR, highpass)
    # 4th-order Butterworth: about 24 dB per octave beyond the cutoff.
    assert rms_db(np.asarray(stop)) - rms_db(tone(stop_hz)) < -25.0
    assert rms_db(np.asarray(passed)) - rms_db(tone(pass_hz)) > -0.5


def test_filter_in_the_chain_uses_the_configured_cutoffs():
    spec = dataclasses.replace(OFF, filter_p=1.0, lowpass_hz=(1000.0, 1000.0), highpass_hz=(1000.0, 1000.0))
    x = batch_of(tone(3000.0) + tone(200.0), b=128)
    out = run(spec, x)
    spectrum = np.abs(np.fft.rfft(out, axis=-1))
    bins = np.fft.rfftfreq(4096, 1 / SR)
    low, high = spectrum[..., np.argmin(abs(bins - 200))], spectrum[..., np.argmin(abs(bins - 3000))]
    lowpassed = low > 10 * high
    highpassed = high > 10 * low
    assert np.all(lowpassed | highpassed)
    assert 0.3 < lowpassed.mean() < 0.7  # low or high pass, chosen per view


def test_reproducible_from_the_key():
    spec = AugmentSpec(sample_rate=SR)
    x = batch_of(tone(440))
    np.testing.assert_array_equal(run(spec, x, seed=5), run(spec, x, seed=5))
    assert not np.array_equal(run(spec, x, seed=5), run(spec, x, seed=6))
