import jax
import jax.numpy as jnp
import librosa
import ml_collections
import numpy as np
import pytest

from jaxmusic.models import frontend
from jaxmusic.models.frontend import LogMel
from jaxmusic.prepare.synth import generate_clip

# (sample_rate, n_fft, hop, n_mels, f_min, f_max): Won et al.; McCallum et al. / MusiCNN-ish
# (96 bins, 10 ms hop); a 22.05 kHz, 2048-point set with a non-zero f_min.
PARAMS = {
    "won": (16000, 512, 256, 128, 0.0, 8000.0),
    "mule": (16000, 512, 160, 96, 0.0, 8000.0),
    "wide": (22050, 2048, 512, 128, 20.0, 11025.0),
}
TOLERANCE_DB = 0.01  # stated in frontend.py's docstring
RANGE_DB = 80.0


def _clip(kind: str, sample_rate: int) -> np.ndarray:
    n = 2 * sample_rate + 77  # not a multiple of any hop
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(0)
    if kind == "noise":
        y = 0.3 * rng.standard_normal(n)
    elif kind == "sines":
        y = (
            0.5 * np.sin(2 * np.pi * 440 * t)
            + 0.2 * np.sin(2 * np.pi * 3001.7 * t)
            + 1e-3 * rng.standard_normal(n)
        )
    elif kind == "pure":
        y = 0.9 * np.sin(2 * np.pi * 1234.5 * t)
    else:
        music = generate_clip(0, 3, sample_rate=sample_rate, duration_s=2.0).audio  # float32 in [-1, 1]
        y = np.pad(music, (0, n - len(music)))
    return np.asarray(y, dtype=np.float32)


def _librosa_db(y, sr, n_fft, hop, n_mels, f_min, f_max):
    s = librosa.feature.melspectrogram(
        y=y,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop,
        n_mels=n_mels,
        fmin=f_min,
        fmax=f_max,
        center=True,
        pad_mode="constant",
        power=2.0,
    )
    return librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=None).T


@pytest.mark.parametrize("name", list(PARAMS))
def test_logmel_matches_librosa_within_the_stated_tolerance(name):
    sr, n_fft, hop, n_mels, f_min, f_max = PARAMS[name]
    layer = LogMel(sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, f_min=f_min, f_max=f_max)
    clips = {kind: _clip(kind, sr) for kind in ("noise", "sines", "pure", "music")}
    ours = np.asarray(jax.jit(lambda a: layer.apply({}, a))(jnp.stack(list(clips.values()))))
    for i, (kind, y) in enumerate(clips.items()):
        ref = _librosa_db(y, sr, n_fft, hop, n_mels, f_min, f_max)
        assert ours[i].shape == ref.shape == (frontend.num_frames(len(y), n_fft, hop), n_mels)
        near = ref > ref.max() - RANGE_DB
        err = np.abs(ours[i] - ref)[near].max()
        assert err < TOLERANCE_DB, f"{name}/{kind}: {err:.4f} dB"


def test_silence_is_the_floor_and_short_inputs_have_librosas_frame_count():
    layer = LogMel(n_fft=512, hop_length=256, n_mels=32)
    for n in (1, 100, 255, 256, 257, 600):
        out = layer.apply({}, jnp.zeros((1, n)))
        assert out.shape == (1, frontend.num_frames(n, 512, 256), 32)
        assert (
            out.shape[1] == librosa.util.frame(np.zeros(n + 512), frame_length=512, hop_length=256).shape[-1]
        )
        np.testing.assert_allclose(np.asarray(out), -100.0)
    with pytest.raises(ValueError, match="samples >= 1"):
        layer.apply({}, jnp.zeros((1, 0)))


def test_samples_for_frames_is_the_tight_minimum():
    for n_fft, hop in ((512, 256), (512, 160), (401, 100)):
        for frames in (1, 2, 7, 128):
            n = frontend.samples_for_frames(frames, n_fft, hop)
            assert frontend.num_frames(n, n_fft, hop) >= frames
            assert n == 1 or frontend.num_frames(n - 1, n_fft, hop) < frames


def test_logmel_from_config_reads_the_shared_section():
    model = ml_collections.ConfigDict({"logmel": frontend.default_config()})
    model.logmel.n_mels = 64
    model.logmel.time_masks = 2
    layer = frontend.logmel_from_config(model)
    assert (layer.n_mels, layer.time_masks, layer.hop_length, layer.f_max) == (64, 2, 256, 8000.0)


MASKED = {"n_mels": 40, "time_masks": 2, "time_mask_frames": 6, "freq_masks": 2, "freq_mask_bins": 5}


def _audio(batch=4, n=8000):
    return jax.random.uniform(jax.random.PRNGKey(0), (batch, n), minval=-0.5, maxval=0.5)


def test_specaugment_off_is_the_identity_and_needs_no_rng():
    audio = _audio()
    plain = LogMel(n_mels=40).apply({}, audio)
    np.testing.assert_array_equal(LogMel(n_mels=40).apply({}, audio, train=True), plain)
    np.testing.assert_array_equal(LogMel(**MASKED).apply({}, audio, train=False), plain)


def test_specaugment_masks_bands_to_the_mean_reproducibly_and_per_example():
    audio = _audio()
    plain = np.asarray(LogMel(n_mels=40).apply({}, audio))
    layer = LogMel(**MASKED)
    masked = lambda seed: np.asarray(
        layer.apply({}, audio, train=True, rngs={"specaugment": jax.random.PRNGKey(seed)})
    )
    a = masked(1)
    np.testing.assert_array_equal(a, masked(1))
    assert not np.array_equal(a, masked(2))
    mean = plain.mean(axis=(1, 2), keepdims=True)
    changed = a != plain
    np.testing.assert_allclose(np.where(changed, a, mean), np.broadcast_to(mean, a.shape), rtol=1e-6)
    full_frames = np.all(a == mean, axis=2)  # [batch, frames]: time masks
    full_bins = np.all(a == mean, axis=1)  # [batch, bins]: frequency masks
    assert full_frames.any() and full_bins.any()
    assert full_frames.sum(axis=1).max() <= 2 * 6 and full_bins.sum(axis=1).max() <= 2 * 5
    patterns = {changed[i].tobytes() for i in range(len(a))}
    assert len(patterns) > 1  # each example draws its own masks
