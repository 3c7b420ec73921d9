import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from jaxmusic.augment import (
    ALLPASS_LENGTHS,
    COMB_LENGTHS,
    AugmentSpec,
    augment_batch,
    butterworth_filter,
    delay,
    draw_batch,
    pitch_shift,
    reverb,
    reverb_feedback,
)
from jaxmusic.config import base_config

SR = 16000
OFF = AugmentSpec(sample_rate=SR, polarity_p=0.0, noise_p=0.0, gain_p=0.0, filter_p=0.0)


def tone(freq, n=4096):
    return np.sin(2 * np.pi * freq * np.arange(n) / SR).astype(np.float32)


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x), axis=-1)))


def batch_of(x, b=64):
    return jnp.broadcast_to(jnp.asarray(x), (b, 2, x.shape[-1]))


# Jitted once, so that calls with the same spec and shapes compile once.
augment = jax.jit(augment_batch, static_argnums=2)


def draws(key, spec, b=8, v=2):
    # Eagerly: op by op, cached per shape whatever the spec (jit would compile per spec).
    return jax.tree.map(np.asarray, draw_batch(key, spec, b, v))


def run(spec, views, seed=0):
    return np.asarray(augment(views, jax.random.PRNGKey(seed), spec))


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


# --- CLMR's last three transforms: delay, pitch shift, reverb ---

FULL = dataclasses.replace(AugmentSpec(sample_rate=SR), delay_p=0.3, pitch_p=0.6, reverb_p=0.6)
NEW = ("delay_p", "pitch_p", "reverb_p")


def burst(n=16000, start=100, length=800, seed=0):
    x = np.zeros(n, np.float32)
    x[start : start + length] = np.random.default_rng(seed).normal(size=length)
    return x


def frequency(y, sr=SR):
    """Peak frequency of the middle of `y` (Hann window, zero-padded FFT, parabolic peak)."""
    seg = y[len(y) // 4 : len(y) // 4 + len(y) // 2]
    s = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 16 * len(seg)))
    k = int(np.argmax(s))
    a, b, c = np.log(s[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / (16 * len(seg))


def test_new_transforms_are_off_in_base_config_and_leave_the_first_four_unchanged():
    spec = AugmentSpec.from_config(base_config().augment, SR)
    assert spec == AugmentSpec(sample_rate=SR)  # the dataclass defaults are base_config's
    assert (spec.delay_p, spec.pitch_p, spec.reverb_p) == (0.0, 0.0, 0.0)
    # The first four transforms draw the same parameters whatever the later ones do.
    key = jax.random.PRNGKey(3)
    four, full = draws(key, spec), draws(key, FULL)
    for name in ("polarity", "noise", "noise_std", "gain", "gain_db", "highpass", "cutoff_hz", "filter"):
        np.testing.assert_array_equal(np.asarray(four[name]), np.asarray(full[name]))


@pytest.mark.parametrize("name", NEW)
def test_new_transform_never_and_always(name):
    x = batch_of(burst(12000), b=8)  # longer than the longest delay
    np.testing.assert_array_equal(run(dataclasses.replace(OFF, **{name: 0.0}), x), np.asarray(x))
    out = run(dataclasses.replace(OFF, **{name: 1.0}), x)
    assert np.all(np.max(np.abs(out - np.asarray(x)), axis=-1) > 1e-3)  # every view changed


def test_new_transform_coins_have_their_probability():
    params = jax.jit(draw_batch, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), FULL, 500, 2)
    for name, p in (("delay", 0.3), ("pitch", 0.6), ("reverb", 0.6)):
        assert abs(np.asarray(params[name]).mean() - p) < 0.05, name


def test_delay_echoes_at_the_drawn_lag_with_the_volume():
    x = batch_of(burst(12000), b=8)
    spec = dataclasses.replace(OFF, delay_p=1.0)
    out = run(spec, x, seed=1)
    lags_ms = draws(jax.random.PRNGKey(1), spec)["delay_ms"]
    assert set(np.unique(lags_ms)) <= {200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0}
    assert len(np.unique(lags_ms)) >= 5  # drawn per view
    echo = out - np.asarray(x)
    n = x.shape[-1]
    # Cross-correlation of the echo with the dry signal peaks at the lag, at the volume.
    xc = np.fft.irfft(np.fft.rfft(echo, 2 * n) * np.conj(np.fft.rfft(np.asarray(x), 2 * n)), 2 * n)[..., :n]
    found = np.argmax(xc, axis=-1)
    np.testing.assert_array_equal(found, np.round(lags_ms * SR / 1000).astype(int))
    energy = np.sum(np.asarray(x) ** 2, axis=-1)
    np.testing.assert_allclose(np.max(xc, axis=-1) / energy, 0.5, rtol=1e-4)


def test_delay_longer_than_the_view_changes_nothing():
    x = jnp.asarray(burst(1000, start=10, length=100))
    np.testing.assert_array_equal(np.asarray(delay(x, jnp.int32(1000), 0.5)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(delay(x, jnp.int32(3200), 0.5)), np.asarray(x))


@pytest.fixture(scope="module")
def shifted_tones():
    semitones = np.array([-7.0, -4.5, -1.0, 0.0, 2.5, 7.0], np.float32)
    x = tone(440.0, n=8192)
    shift = jax.jit(jax.vmap(lambda s: pitch_shift(jnp.asarray(x), s, SR, 7.0)))
    return semitones, x, np.asarray(shift(jnp.asarray(semitones)))


def test_pitch_shift_moves_a_sine_by_the_semitones_and_keeps_length_and_level(shifted_tones):
    semitones, x, out = shifted_tones
    assert out.shape == (len(semitones), x.shape[-1])
    for s, y in zip(semitones, out, strict=True):
        np.testing.assert_allclose(frequency(y), 440.0 * 2 ** (s / 12), rtol=1e-3)
        mid = slice(1024, -1024)
        assert abs(rms_db(y[mid]) - rms_db(x[mid])) < 0.5
        # Pure: nearly all the energy within 2 % of the target frequency.
        spectrum = np.abs(np.fft.rfft(y[mid] * np.hanning(len(y[mid])))) ** 2
        freqs = np.fft.rfftfreq(len(y[mid]), 1 / SR)
        near = np.abs(freqs - 440.0 * 2 ** (s / 12)) < 0.02 * 440.0 * 2 ** (s / 12) + 10
        assert spectrum[near].sum() / spectrum.sum() > 0.99


def test_pitch_shift_keeps_the_level_of_noise_and_chords():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=8192)
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(8192, 1 / SR) > 4000] = 0  # nothing shifted past Nyquist
    noise = np.fft.irfft(spectrum, 8192).astype(np.float32)
    chord = sum(tone(f, n=8192) / (i + 1) for i, f in enumerate([220.0, 277.2, 329.6, 440.0, 660.0]))
    shift = jax.jit(jax.vmap(lambda x, s: pitch_shift(x, s, SR, 7.0)))
    semitones = jnp.asarray([-7.0, -3.0, 3.0, 7.0] * 2)
    signals = np.stack([noise] * 4 + [chord] * 4)
    out = np.asarray(shift(jnp.asarray(signals), semitones))
    np.testing.assert_allclose(rms_db(out[:, 1024:-1024]), rms_db(signals[:, 1024:-1024]), atol=1.0)


def test_pitch_shift_in_the_chain_moves_by_the_drawn_semitones():
    spec = dataclasses.replace(OFF, pitch_p=1.0)
    x = batch_of(tone(440.0, n=12000), b=8)  # the shapes of test_new_transform_never_and_always
    out = run(spec, x, seed=2)
    drawn = draws(jax.random.PRNGKey(2), spec)["semitones"]
    assert np.all(np.abs(drawn) <= 7.0) and drawn.min() < -1 and drawn.max() > 1
    measured = np.vectorize(lambda i, j: frequency(out[i, j]))(*np.indices(drawn.shape))
    np.testing.assert_allclose(measured, 440.0 * 2 ** (drawn / 12), rtol=1e-2)


def sox_reverb_reference(x, reverberance, damping, room_size, sr):
    """sox's reverb network run sample by sample (scipy.signal.lfilter, float64)."""
    a = -1 / np.log(1 - 0.3)  # sox reverb.c: feedback 0.3 at reverberance 0 ...
    b = 100 / (np.log(1 - 0.98) * a + 1)  # ... and 0.98 at 100
    g = 1 - np.exp((reverberance - b) / (a * b))
    d = 0.2 + 0.3 * damping / 100
    scale = (0.1 + 0.9 * room_size / 100) * sr / 44100
    wet = np.zeros(len(x))
    for length in COMB_LENGTHS:  # y = z^-L x + g (1 - d) z^-L y / (1 - d z^-1)
        m = max(int(scale * length + 0.5), 1)
        num, den = np.zeros(m + 2), np.zeros(m + 1)
        num[m], num[m + 1] = 1.0, -d
        den[0], den[1] = 1.0, -d
        den[m] -= g * (1 - d)
        wet += scipy.signal.lfilter(num, den, x.astype(np.float64))
    for length in ALLPASS_LENGTHS:  # sox's "allpass": (1.5 z^-A - 1) / (1 - 0.5 z^-A)
        m = max(int(length * sr / 44100 + 0.5), 1)
        num, den = np.zeros(m + 1), np.zeros(m + 1)
        num[0], num[m], den[0], den[m] = -1.0, 1.5, 1.0, -0.5
        wet = scipy.signal.lfilter(num, den, wet)
    return x + 0.015 * wet


@pytest.mark.parametrize(
    "params", [(50.0, 50.0, 100.0), (100.0, 0.0, 100.0), (0.0, 100.0, 0.0), (30.0, 70.0, 40.0)]
)
def test_reverb_is_sox_reverb(params):
    x = burst(12000)
    got = np.asarray(jax.jit(reverb, static_argnums=4)(jnp.asarray(x), *params, SR))
    want = sox_reverb_reference(x, *params, SR)
    np.testing.assert_allclose(got - x, want - x, atol=1e-4 * np.abs(want - x).max())


def test_reverb_feedback_spans_sox_range():
    np.testing.assert_allclose(np.asarray(reverb_feedback(jnp.asarray([0.0, 100.0]))), [0.3, 0.98], rtol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        {"pitch_p": 1.5},
        {"reverb_room_size": (0.0, 150.0)},
        {"delay_step_ms": 0.0},
        {"gain_db": (-1.0, -20.0)},
    ],
)
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(ValueError, match="augment"):
        AugmentSpec(sample_rate=SR, **bad)


def rt60_s(ir, sr=SR, block=0.01):
    """RT60 from the slope of the impulse response's energy envelope (10 ms blocks)."""
    hop = int(sr * block)
    energy_db = 10 * np.log10(np.sum(ir[: len(ir) // hop * hop].reshape(-1, hop) ** 2, axis=1) + 1e-30)
    t = np.arange(len(energy_db)) * block
    fit = (t > 0.02) & (energy_db > energy_db.max() - 40)
    return -60.0 / np.polyfit(t[fit], energy_db[fit], 1)[0]


@pytest.fixture(scope="module")
def impulse_responses():
    n = 2 * SR
    impulse = np.zeros(n, np.float32)
    impulse[0] = 1.0
    settings = {
        "reverberance": [(r, 50.0, 50.0) for r in (0.0, 25.0, 50.0, 75.0, 100.0)],
        "room_size": [(50.0, 50.0, r) for r in (0.0, 25.0, 50.0, 75.0, 100.0)],
        "damping": [(70.0, d, 70.0) for d in (0.0, 50.0, 100.0)],
    }
    flat = np.array([p for ps in settings.values() for p in ps], np.float32)
    fn = jax.jit(jax.vmap(lambda r, d, s: reverb(jnp.asarray(impulse), r, d, s, SR)))
    irs = np.asarray(fn(*(jnp.asarray(flat[:, i]) for i in range(3)))) - impulse
    out, i = {}, 0
    for name, ps in settings.items():
        out[name] = irs[i : i + len(ps)]
        i += len(ps)
    return out


@pytest.mark.parametrize("name", ["reverberance", "room_size"])
def test_reverb_decay_grows_with_reverberance_and_room_size(impulse_responses, name):
    irs = impulse_responses[name]
    rt60 = [rt60_s(ir) for ir in irs]
    tail = [np.sum(ir[SR // 10 :] ** 2) / np.sum(ir**2) for ir in irs]  # energy after 100 ms
    assert np.all(np.diff(rt60) > 0), rt60
    assert np.all(np.diff(tail) > 0), tail
    assert rt60[0] < 0.4 and rt60[-1] > 1.0


def test_reverb_damping_takes_high_frequencies_out_of_the_tail(impulse_responses):
    high = []
    for ir in impulse_responses["damping"]:
        spectrum = np.abs(np.fft.rfft(ir[SR // 10 :])) ** 2
        high.append(spectrum[np.fft.rfftfreq(len(ir) - SR // 10, 1 / SR) > 3000].sum() / spectrum.sum())
    assert high[0] > 1.5 * high[1] > 2.25 * high[2], high


def test_full_chain_is_per_example_reproducible_and_jits_over_a_batch():
    spec = dataclasses.replace(FULL, delay_p=0.5, pitch_p=0.5, reverb_p=0.5)
    x = np.asarray(batch_of(burst(4096, length=2000) + tone(330.0), b=8))
    key = jax.random.PRNGKey(9)
    out = run(spec, jnp.asarray(x), seed=9)
    assert out.shape == x.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, run(spec, jnp.asarray(x), seed=9))
    flat = out.reshape(16, -1)
    assert len({row.tobytes() for row in flat}) == 16  # every view augmented differently
    # An example's output depends only on its own audio and key, not on its neighbours.
    other = x.copy()
    other[1:] = np.asarray(batch_of(tone(1000.0, n=4096), b=7))
    changed = run(spec, jnp.asarray(other), seed=9)
    np.testing.assert_array_equal(changed[0], out[0])
    # Each transform is drawn per example and per view.
    params = draws(key, spec)
    for name in ("delay", "pitch", "reverb"):
        drawn = np.asarray(params[name])
        assert 0 < drawn.mean() < 1 and not np.all(drawn[:, 0] == drawn[:, 1]), name
