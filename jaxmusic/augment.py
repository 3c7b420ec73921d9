"""On-device audio augmentation: CLMR's chain, per example, inside the train step.

Each transform is applied to each view of each example independently, with its own
probability, from a key split off the step's key; so a run is reproducible from
(seed, step) and a resumed run draws the same augmentations. Running on the
accelerator keeps data workers to decoding and cropping: at accelerator speed a
CPU-side chain could not keep up (see the design notes in the README).

CLMR's chain (Spijkervet & Burgoyne 2021), in its order, after the random crop that
the host already made; each step is applied with its own probability:

1. polarity inversion;
2. white noise, its std drawn relative to the signal's;
3. gain, drawn in dB;
4. a high- or low-pass filter: zero-phase, 4th-order Butterworth magnitude response
   applied in the frequency domain (one FFT per view, no sequential recursion);
5. delay: ``x + volume * x`` lagged by a lag drawn from ``delay_ms`` in steps of
   ``delay_step_ms``, zero-filled. The lag is a traced scalar, so the shifted copy is
   one dynamic slice of the zero-padded view (static shape, no per-lag program);
6. pitch shift by a drawn number of semitones s, duration kept: a phase-vocoder time
   stretch by r = 2^(s/12) (STFT buffers sized for the largest |s| the spec allows,
   frames beyond the stretched signal masked), then resampling back by r with a
   Lanczos (windowed-sinc) interpolator gathered at fractional positions. Bins that
   would alias when shifting up are dropped before resynthesis. A sine's frequency
   moves by r to well within 0.1 % (tested). Like any plain phase vocoder
   (librosa's included, whose output level on music it matches) it smears phases
   across bins, which costs up to 3 dB on noisy content; the output is rescaled to
   the input's energy in the band kept;
7. reverb: sox's reverb (Freeverb: eight low-pass-feedback combs into four allpasses,
   wet gain 0 dB, no pre-delay, mono), evaluated as the network's exact transfer
   function on an FFT grid and applied by FFT convolution, then added to the dry
   signal as sox does (it matches sox's recursive network to 1e-4, tested). See
   :func:`reverb` for the 0-100 parameter mapping and why the transfer function is
   evaluated slightly off the unit circle.

Delay, pitch shift and reverb replace per-sample recursions and variable-length
buffers with FFTs, gathers and cumulative sums over frames: every per-view parameter
is a traced scalar, and the program has the same shapes whatever is drawn, which is
what lets it be vmapped over views and run fast on any accelerator. A transform whose
probability is 0 is left out of the program altogether (zero cost), so configs that
do not use the last three compile exactly the four-transform chain.

Every per-view parameter comes from :func:`draw`; :func:`apply` only applies them.
The first four transforms' draws use the key layout they always had, and the later
ones fold new constants into the view's key, so a config with the new transforms
off augments exactly as before.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

FILTER_ORDER = 4

# fold_in(key, i) equals split(key, n)[i] for i < n under JAX's partitionable threefry,
# so the new transforms' streams use constants far from the 9 indices split off below.
_DELAY_STREAM = 0x6465_6C61
_PITCH_STREAM = 0x7069_7463
_REVERB_STREAM = 0x7265_7662

# sox's reverb (after Freeverb): delay lengths in samples at 44.1 kHz.
COMB_LENGTHS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_LENGTHS = (225, 341, 441, 556)
REVERB_WET_GAIN = 0.015  # sox's fixed input gain of the comb bank (wet gain 0 dB)
# Weight of the reverb tail that the FFT grid wraps back onto the output (see reverb()).
_REVERB_WRAP = 1e-5

LANCZOS_A = 4  # taps either side of the resampling position


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """Probabilities and ranges of the chain (hashable, so it can be static under jit).

    The defaults are base_config's: CLMR's first four transforms, the later three off
    (configs/clmr_samplecnn.py turns them on with the paper's probabilities).
    """

    sample_rate: int
    polarity_p: float = 0.8
    noise_p: float = 0.01
    noise_std: tuple[float, float] = (1e-4, 1e-2)
    gain_p: float = 0.3
    gain_db: tuple[float, float] = (-20.0, -1.0)
    filter_p: float = 0.8
    lowpass_hz: tuple[float, float] = (2200.0, 4000.0)
    highpass_hz: tuple[float, float] = (200.0, 1200.0)
    delay_p: float = 0.0
    delay_ms: tuple[float, float] = (200.0, 500.0)
    delay_step_ms: float = 50.0
    delay_volume: float = 0.5
    pitch_p: float = 0.0
    pitch_semitones: tuple[float, float] = (-7.0, 7.0)
    reverb_p: float = 0.0
    reverb_reverberance: tuple[float, float] = (0.0, 100.0)
    reverb_damping: tuple[float, float] = (0.0, 100.0)
    reverb_room_size: tuple[float, float] = (0.0, 100.0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ValueError(f"augment.{f.name} must be a probability in [0, 1], got {value}")
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"augment.{f.name} must be a (low, high) range, got {value}")
        if self.delay_step_ms <= 0 or self.delay_ms[0] <= 0:
            raise ValueError("augment.delay_ms must be positive and augment.delay_step_ms > 0")
        for name in ("reverb_reverberance", "reverb_damping", "reverb_room_size"):
            low, high = getattr(self, name)
            if low < 0 or high > 100:
                raise ValueError(f"augment.{name} must lie in [0, 100], got {(low, high)}")

    @classmethod
    def from_config(cls, cfg: ml_collections.ConfigDict, sample_rate: int) -> AugmentSpec:
        """Build from a config's `augment` section."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"sample_rate"}
        values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in cfg.items() if k in fields}
        return cls(sample_rate=sample_rate, **values)

    @property
    def delay_choices_ms(self) -> tuple[float, ...]:
        """The lags the delay draws from: low, low + step, ... up to high."""
        low, high = self.delay_ms
        count = math.floor((high - low) / self.delay_step_ms + 1e-9) + 1
        return tuple(low + i * self.delay_step_ms for i in range(count))

    @property
    def max_semitones(self) -> float:
        """The largest |shift| the pitch shifter's static buffers must hold."""
        return max(abs(self.pitch_semitones[0]), abs(self.pitch_semitones[1]))


# --- transforms, one view [samples] each ---


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


def delay(x: jax.Array, lag: jax.Array, volume: float) -> jax.Array:
    """`x + volume * x` delayed by `lag` samples (a traced integer), zero-filled.

    A lag at or beyond the view's length leaves it unchanged.
    """
    n = x.shape[-1]
    padded = jnp.concatenate([jnp.zeros_like(x), x])
    # dynamic_slice clamps its start to [0, n]: a lag >= n reads only the zeros.
    shifted = jax.lax.dynamic_slice_in_dim(padded, n - lag, n)
    return x + volume * shifted


def _stft_size(sample_rate: int, n: int) -> int:
    """FFT size of the pitch shifter: a power of two near 46 ms (1024 at 22.05 kHz)."""
    size = 2 ** round(math.log2(max(sample_rate * 0.046, 16)))
    # Reflect padding needs half a frame inside the view.
    return int(min(size, 2 ** math.floor(math.log2(max(n, 16)))))


def _ola(chunks: jax.Array) -> jax.Array:
    """Overlap-add frames of 4 hops each [frames, 4, hop] into [frames + 3, hop]."""
    return sum(jnp.pad(chunks[:, q], ((q, 3 - q), (0, 0))) for q in range(4))


def pitch_shift(
    x: jax.Array, semitones: jax.Array, sample_rate: int, max_semitones: float = 7.0
) -> jax.Array:
    """Shift the pitch by `semitones` (a traced scalar), keeping the duration.

    A phase vocoder stretches the view in time by r = 2^(s/12) (Hann window of about
    46 ms, hop a quarter of it, the instantaneous frequency of each bin from the
    phase advance between frames), then the stretched signal is read back at
    positions i * r with a Lanczos kernel, which scales every frequency by r and
    restores the length. All buffers are sized for |s| = `max_semitones` (static);
    frames past the stretched signal are masked, so shapes do not depend on s.
    Shifting up, bins above Nyquist / r are dropped before resynthesis so that reading
    faster does not alias. The result is rescaled to the input's energy in the bins
    kept (see the end of the function).
    """
    n = x.shape[-1]
    nfft = _stft_size(sample_rate, n)
    hop = nfft // 4
    pad = nfft // 2
    num_bins = nfft // 2 + 1
    max_rate = 2.0 ** (max_semitones / 12.0)
    # The rate in fixed point, so that read-back positions i * r are exact integers
    # (float32 would misplace them by up to 1/256 sample late in a long view).
    frac_bits = min(20, int(math.log2((2**31 - 1) / ((n + 1) * max_rate + 1))))
    step = jnp.round(2.0 ** (jnp.clip(semitones, -max_semitones, max_semitones) / 12.0) * 2**frac_bits)
    step = step.astype(jnp.int32)
    rate = step.astype(jnp.float32) / 2**frac_bits
    window = np.hanning(nfft + 1)[:-1].astype(np.float32)  # periodic Hann

    # Analysis, centred frames: frame f covers [f * hop - pad, f * hop + pad).
    frames_in = 1 + n // hop
    right = (frames_in + 3) * hop - n - pad
    chunks = jnp.pad(x, (pad, right), mode="reflect").reshape(frames_in + 3, hop)
    frames = jnp.concatenate([chunks[q : q + frames_in] for q in range(4)], axis=1)
    spectrum = jnp.fft.rfft(frames * window)
    magnitude = jnp.abs(spectrum)
    # Phases as unit phasors (a silent bin gets phase 0, as angle() would give it), and
    # the advance from frame i to i + 1 as one: exact modulo 2 pi, which is all a phase
    # is, with no atan2, no unwrapping and no sine or cosine per output bin.
    unit = jnp.where(magnitude > 1e-20, spectrum / jnp.maximum(magnitude, 1e-20), 1.0)
    advance = unit[1:] * jnp.conj(unit[:-1])  # [frames_in - 1, bins]
    magnitude = jnp.concatenate([magnitude, jnp.zeros((1, num_bins))])  # [frames_in + 1, bins]

    # Synthesis frames, at input-frame times m / r: enough for the largest rate that
    # every position read back lies where four frames overlap (where fewer do, the
    # window-sum normalisation would amplify whatever the edge frames get wrong).
    # In fixed point, m / r = m 2^b / step exactly.
    frames_out = math.floor(((n - 1) * max_rate + pad + LANCZOS_A + 1) / hop) + 2
    scaled = jnp.arange(frames_out, dtype=jnp.int32) << frac_bits
    whole = scaled // step
    index = jnp.minimum(whole, frames_in - 1)
    alpha = ((scaled - whole * step).astype(jnp.float32) / step.astype(jnp.float32))[:, None]
    mag = (1 - alpha) * magnitude[index] + alpha * magnitude[index + 1]
    mag = jnp.where((whole < frames_in)[:, None], mag, 0.0)

    # Each output frame advances the previous one's phase by the advance measured at
    # the previous one's input frame (librosa's phase vocoder). Frames that reach into
    # the reflected padding are not a stationary continuation of the signal, and their
    # advances would scramble the phase relations of neighbouring bins for good (a
    # sine loses half its level); so only advances between inside frames are used, and
    # phases start from the first inside frame, extrapolated back to output frame 0.
    first = min(2, frames_in - 2)
    last = max(first, (n - pad) // hop - 1)
    advance = advance[np.clip(np.arange(frames_in), first, last)]  # [frames_in, bins]
    most = math.ceil(max_rate)  # output frames per input frame, at most
    # Output frames at input frame i: m from ceil(i r) to ceil((i + 1) r) - 1.
    i = jnp.arange(frames_in + 1, dtype=jnp.int32)
    first_out = (i * step + (2**frac_bits - 1)) >> frac_bits
    per_frame = _phasor_power(advance, (first_out[1:] - first_out[:-1])[:, None], most)
    before = jax.lax.associative_scan(jnp.multiply, per_frame, axis=0)
    before = jnp.concatenate([jnp.ones((1, num_bins), before.dtype), before[:-1]])  # exclusive
    within = _phasor_power(advance[index], (jnp.arange(frames_out) - first_out[index])[:, None], most)
    start = unit[first] * _phasor_power(jnp.conj(advance[first]), first, first)
    phasor = start * before[index] * within
    keep = jnp.arange(num_bins) * rate <= nfft // 2  # no aliasing when read back faster
    stretched = jnp.fft.irfft(jnp.where(keep, mag, 0.0) * phasor, n=nfft) * window

    # Overlap-add, normalised by the summed squared windows (constant, from NumPy).
    buffer = _ola(stretched.reshape(frames_out, 4, hop)).reshape(-1)
    w2 = np.broadcast_to((window**2).reshape(1, 4, hop), (frames_out, 4, hop))
    norm = sum(np.pad(w2[:, q], ((q, 3 - q), (0, 0))) for q in range(4)).reshape(-1)
    buffer = buffer / np.maximum(norm, 1e-3).astype(np.float32)

    # Read back at i * r (stretched time i * r holds input time i), Lanczos-interpolated.
    fixed = jnp.arange(n, dtype=jnp.int32) * step
    base = (fixed >> frac_bits) + pad
    frac = (fixed & (2**frac_bits - 1)).astype(jnp.float32) / 2**frac_bits
    kernel = _lanczos_kernel(frac)
    # Each read takes 2a consecutive samples: gather rows of a [positions, 2a] view.
    taps = 2 * LANCZOS_A
    windows = jnp.stack([buffer[j : buffer.shape[0] - taps + 1 + j] for j in range(taps)], axis=1)
    rows = jnp.clip(base - (LANCZOS_A - 1), 0, windows.shape[0] - 1)
    y = jnp.sum(windows[rows] * kernel, axis=1)

    # Overlap-adding frames whose phases do not cohere (noise, dense mixtures) sums
    # powers rather than amplitudes: with this window and overlap about -3 dB (librosa's
    # phase vocoder loses the same). Restore the input's energy in the bins kept.
    power = magnitude[:-1] ** 2
    kept = jnp.sum(jnp.where(keep, power, 0.0)) / jnp.maximum(jnp.sum(power), 1e-30)
    energy = jnp.sum(y * y)
    scale = jnp.where(energy > 1e-30, jnp.sqrt(kept * jnp.sum(x * x) / jnp.maximum(energy, 1e-30)), 1.0)
    return (y * scale).astype(x.dtype)


def _phasor_power(p: jax.Array, e: jax.Array | int, most: int) -> jax.Array:
    """p ** e for unit phasors p and integer exponents 0 <= e <= most (static), by products."""
    out = jnp.ones_like(p)
    for c in range(1, most + 1):
        out = jnp.where(e >= c, out * p, out)
    return out


def _lanczos_kernel(frac: jax.Array) -> jax.Array:
    """Lanczos weights [..., 2a] for taps at -a+1..a around a fractional position `frac` in [0, 1).

    sinc(d) sinc(d / a) at d = j - frac, with sin(pi (j - frac)) and sin(pi (j - frac) / a)
    expanded by angle addition: three transcendentals per position instead of 4a.
    """
    a = LANCZOS_A
    j = np.arange(-a + 1, a + 1)
    d = j - frac[..., None]
    f = frac[..., None]
    sin_f = -((-1.0) ** j) * jnp.sin(np.pi * f)  # sin(pi (j - f))
    sin_fa = np.sin(np.pi * j / a) * jnp.cos(np.pi * f / a) - np.cos(np.pi * j / a) * jnp.sin(np.pi * f / a)
    small = jnp.abs(d) < 1e-3
    kernel = jnp.where(small, 1.0, sin_f * sin_fa / jnp.where(small, 1.0, np.pi**2 * d * d / a))
    return kernel / jnp.sum(kernel, axis=-1, keepdims=True)  # unit DC gain at every phase


def _fast_len(m: int) -> int:
    """Smallest 2^a 3^b 5^c >= m: FFT sizes every backend handles quickly."""
    best = 2 ** math.ceil(math.log2(m))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < m:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def reverb_feedback(reverberance: jax.Array) -> jax.Array:
    """sox's comb feedback for reverberance 0..100: 0.3 at 0, rising to 0.98 at 100."""
    a = -1.0 / math.log(1 - 0.3)
    b = 100.0 / (math.log(1 - 0.98) * a + 1)
    return 1.0 - jnp.exp((reverberance - b) / (a * b))


def reverb(
    x: jax.Array,
    reverberance: jax.Array,
    damping: jax.Array,
    room_size: jax.Array,
    sample_rate: int,
) -> jax.Array:
    """sox's reverb (Freeverb's network, mono, wet gain 0 dB): `x` plus the wet signal.

    Parameters, each 0-100 as in sox, and how they act:

    - reverberance sets the combs' feedback g = 1 - exp((rev - b) / (a b)), with a and
      b chosen so that g runs from 0.3 (rev 0) to 0.98 (rev 100);
    - damping sets the one-pole low-pass in each comb's loop, coefficient
      d = 0.2 + 0.3 * damping / 100: the loop gain falls from g at DC to
      g (1 - d) / (1 + d) at Nyquist, so high frequencies die away faster;
    - room size scales the comb delays (1116-1617 samples at 44.1 kHz, scaled with the
      sample rate) by 0.1 + 0.9 * room / 100.

    The decay per comb pass at DC is -20 log10(g) dB, so a comb of length L has an
    RT60 of about 3 L / (-log10 g) samples: from about 20 ms (room 0, reverberance 0)
    to about 11 s (100, 100), shorter at high frequencies as damping grows. Four fixed
    allpass diffusers (225-556 samples, feedback 0.5) smear the comb echoes and add a
    short tail of their own (about 0.1 s). The wet signal's energy is -6 to -13 dB of
    the dry signal's for a noise burst.

    The network is linear and time-invariant, so its output over the view is the
    convolution of `x` with its impulse response truncated to the view's length. Rather
    than running the recursions sample by sample, its transfer function is evaluated
    on an FFT grid of at least twice the view's length. That grid would wrap the
    response's tail (which can outlast the view) back onto it, so the input is weighted
    by rho^-t and the transfer function evaluated at z = rho e^(jw): the wrapped tail
    then arrives weighted by rho^-N = 1e-5, and un-weighting the output by rho^t
    recovers the response itself.
    """
    n = x.shape[-1]
    nfft = _fast_len(2 * n)
    num_bins = nfft // 2 + 1
    log_rho = math.log(1.0 / _REVERB_WRAP) / nfft
    t = np.arange(n)
    k = np.arange(num_bins)
    scale_rate = sample_rate / 44100.0

    # e^(-j 2 pi q / nfft) for every q, computed once per batch (it does not depend on
    # the view): looking it up is several times cheaper than a sine and cosine per bin.
    twiddle = jnp.exp(-2j * np.pi * jnp.arange(nfft) / nfft)

    def z_pow(m: jax.Array | int) -> jax.Array:
        """z^-m on the grid; k m mod nfft in integers keeps the angle exact."""
        return jnp.exp(-log_rho * m) * twiddle[(k * m) % nfft]

    if (num_bins - 1) * max(COMB_LENGTHS) * max(scale_rate, 1.0) >= 2**31:
        raise ValueError(f"reverb: views of {n} samples are too long for int32 phase arithmetic")
    feedback = reverb_feedback(reverberance)
    d = 0.2 + 0.3 * damping / 100.0
    room_scale = 0.1 + 0.9 * room_size / 100.0
    loop_lowpass = (1 - d) / (1 - d * z_pow(1))
    combs = 0.0
    for length in COMB_LENGTHS:
        delay_len = jnp.maximum(jnp.floor(room_scale * scale_rate * length + 0.5), 1).astype(jnp.int32)
        z_l = z_pow(delay_len)
        combs = combs + z_l / (1 - feedback * loop_lowpass * z_l)
    # The allpasses do not depend on the drawn parameters: one NumPy constant.
    allpasses = np.ones(num_bins, np.complex128)
    for length in ALLPASS_LENGTHS:
        m = max(math.floor(scale_rate * length + 0.5), 1)  # sox rounds half up
        z_a = np.exp(-log_rho * m) * np.exp(-2j * np.pi * ((k * m) % nfft) / nfft)
        allpasses *= (1.5 * z_a - 1) / (1 - 0.5 * z_a)
    response = combs * (REVERB_WET_GAIN * allpasses).astype(np.complex64)

    weighted = jnp.fft.rfft(x * np.exp(-log_rho * t).astype(np.float32), n=nfft)
    wet = jnp.fft.irfft(weighted * response, n=nfft)[:n] * np.exp(log_rho * t).astype(np.float32)
    return (x + wet).astype(x.dtype)


# --- the chain ---


def draw(key: jax.Array, spec: AugmentSpec) -> dict[str, jax.Array]:
    """Every random parameter of the chain for one view, from its key."""
    keys = jax.random.split(key, 9)

    def coin(k: jax.Array, p: float) -> jax.Array:
        return jax.random.uniform(k) < p

    def uniform(k: jax.Array, bounds: tuple[float, float]) -> jax.Array:
        return jax.random.uniform(k, minval=bounds[0], maxval=bounds[1])

    highpass = jax.random.bernoulli(keys[6])
    nyquist = spec.sample_rate / 2
    low = jnp.minimum(uniform(keys[7], spec.lowpass_hz), nyquist)
    high = jnp.minimum(uniform(keys[8], spec.highpass_hz), nyquist)
    params = {
        "polarity": coin(keys[0], spec.polarity_p),
        "noise": coin(keys[1], spec.noise_p),
        "noise_key": keys[2],
        "noise_std": uniform(keys[3], spec.noise_std),
        "gain": coin(keys[4], spec.gain_p),
        "gain_db": uniform(keys[5], spec.gain_db),
        "highpass": highpass,
        "cutoff_hz": jnp.where(highpass, high, low),
        # The filter coin uses the choice key's sibling so that the transforms added
        # after it do not shift the draws of the ones before them.
        "filter": coin(jax.random.fold_in(keys[6], 1), spec.filter_p),
    }
    delay_keys = jax.random.split(jax.random.fold_in(key, _DELAY_STREAM))
    choices = spec.delay_choices_ms
    params["delay"] = coin(delay_keys[0], spec.delay_p)
    pick = jax.random.randint(delay_keys[1], (), 0, len(choices))
    params["delay_ms"] = jnp.asarray(choices, jnp.float32)[pick]
    pitch_keys = jax.random.split(jax.random.fold_in(key, _PITCH_STREAM))
    params["pitch"] = coin(pitch_keys[0], spec.pitch_p)
    params["semitones"] = uniform(pitch_keys[1], spec.pitch_semitones)
    reverb_keys = jax.random.split(jax.random.fold_in(key, _REVERB_STREAM), 4)
    params["reverb"] = coin(reverb_keys[0], spec.reverb_p)
    params["reverberance"] = uniform(reverb_keys[1], spec.reverb_reverberance)
    params["damping"] = uniform(reverb_keys[2], spec.reverb_damping)
    params["room_size"] = uniform(reverb_keys[3], spec.reverb_room_size)
    return params


def delay_samples(delay_ms: jax.Array, sample_rate: int) -> jax.Array:
    """A lag in milliseconds as a whole number of samples."""
    return jnp.round(delay_ms * (sample_rate / 1000.0)).astype(jnp.int32)


def apply(x: jax.Array, params: dict[str, jax.Array], spec: AugmentSpec) -> jax.Array:
    """Apply the chain to one view [samples] with parameters from :func:`draw`."""
    sr = spec.sample_rate
    # A transform that can never apply is not traced at all (no cost, exact identity).
    if spec.polarity_p > 0:
        x = jnp.where(params["polarity"], polarity(x), x)
    if spec.noise_p > 0:
        x = jnp.where(params["noise"], white_noise(x, params["noise_key"], params["noise_std"]), x)
    if spec.gain_p > 0:
        x = jnp.where(params["gain"], gain(x, params["gain_db"]), x)
    if spec.filter_p > 0:
        filtered = butterworth_filter(x, params["cutoff_hz"], sr, params["highpass"])
        x = jnp.where(params["filter"], filtered, x)
    if spec.delay_p > 0:
        delayed = delay(x, delay_samples(params["delay_ms"], sr), spec.delay_volume)
        x = jnp.where(params["delay"], delayed, x)
    if spec.pitch_p > 0:
        x = jnp.where(params["pitch"], pitch_shift(x, params["semitones"], sr, spec.max_semitones), x)
    if spec.reverb_p > 0:
        reverbed = reverb(x, params["reverberance"], params["damping"], params["room_size"], sr)
        x = jnp.where(params["reverb"], reverbed, x)
    return x


def augment_one(x: jax.Array, key: jax.Array, spec: AugmentSpec) -> jax.Array:
    """Apply the chain to one view [samples]."""
    return apply(x, draw(key, spec), spec)


def draw_batch(key: jax.Array, spec: AugmentSpec, batch: int, views: int) -> dict[str, jax.Array]:
    """The parameters :func:`augment_batch` draws with `key`, each [batch, views]."""
    keys = jax.random.split(key, batch * views)
    keys = keys.reshape(batch, views, *keys.shape[1:])
    return jax.vmap(jax.vmap(lambda k: draw(k, spec)))(keys)


def augment_batch(views: jax.Array, key: jax.Array, spec: AugmentSpec) -> jax.Array:
    """Augment every view of every example independently: [batch, views, samples]."""
    b, v, _ = views.shape
    params = draw_batch(key, spec, b, v)
    return jax.vmap(jax.vmap(lambda x, p: apply(x, p, spec)))(views, params)
