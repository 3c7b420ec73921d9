"""Handcrafted-feature baselines: dimensions, agreement with librosa, parallel = serial."""

import warnings

import librosa
import numpy as np
import pytest

from jaxmusic.evaluate.handcrafted import (
    FEATURES,
    HandcraftedEmbedder,
    feature_dims,
    window_features,
)

EXPECTED_DIMS = {
    8000: {"mfcc": 78, "chroma": 24, "cqt": 166, "spectral_contrast": 14},
    16000: {"mfcc": 78, "chroma": 24, "cqt": 168, "spectral_contrast": 14},
}


def _tone(freq: float, sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _int16_windows(n: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 8000
    tones = np.sin(2 * np.pi * rng.uniform(100, 2000, (n, 1)) * t)
    audio = 0.3 * tones + 0.05 * rng.standard_normal((n, samples))
    return np.round(audio * 32767).astype(np.int16)


@pytest.mark.parametrize("sample_rate", sorted(EXPECTED_DIMS))
def test_dims_per_feature(sample_rate):
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(sample_rate)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a legitimate window must not warn
        for name, dim in EXPECTED_DIMS[sample_rate].items():
            assert feature_dims([name], sample_rate) == dim
            vector = window_features(audio, sample_rate, [name])
            assert vector.shape == (dim,) and vector.dtype == np.float32
    assert feature_dims(list(FEATURES), sample_rate) == sum(EXPECTED_DIMS[sample_rate].values())


def test_mfcc_matches_librosa():
    rng = np.random.default_rng(1)
    audio = (_tone(440.0, 16000) + 0.05 * rng.standard_normal(16000)).astype(np.float32)
    mfcc = librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=13)
    vector = window_features(audio, 16000, ["mfcc"])
    np.testing.assert_allclose(vector[:13], mfcc.mean(axis=1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(vector[39:52], mfcc.std(axis=1), rtol=1e-5, atol=1e-4)


def test_concatenation_follows_the_order_of_names():
    audio = _tone(440.0, 16000)
    mfcc = window_features(audio, 16000, ["mfcc"])
    chroma = window_features(audio, 16000, ["chroma"])
    np.testing.assert_array_equal(
        window_features(audio, 16000, ["chroma", "mfcc"]), np.concatenate([chroma, mfcc])
    )


@pytest.mark.parametrize(("freq", "pitch_class"), [(440.0, 9), (261.63, 0), (392.0, 7)])
def test_tone_chroma_peaks_at_its_pitch_class(freq, pitch_class):
    mean_chroma = window_features(_tone(freq, 16000), 16000, ["chroma"])[:12]
    assert np.argmax(mean_chroma) == pitch_class


def test_unknown_feature_refused():
    with pytest.raises(ValueError, match=r"known: \['chroma', 'cqt', 'mfcc', 'spectral_contrast'\]"):
        HandcraftedEmbedder(["mfcc", "zcr"], 16000, 16000)
    with pytest.raises(ValueError, match="known"):
        feature_dims(["zcr"], 16000)


def test_embedder_attributes_and_identity():
    with HandcraftedEmbedder(["mfcc", "chroma"], 8000, 8000) as embedder:
        assert embedder.name == "handcrafted-mfcc+chroma"
        assert (embedder.sample_rate, embedder.window_samples, embedder.dim) == (8000, 8000, 102)
        identity = embedder.identity()
        assert identity["features"] == ["mfcc", "chroma"]
        assert identity["librosa"] == librosa.__version__
        assert identity != HandcraftedEmbedder(["chroma", "mfcc"], 8000, 8000).identity()
        with pytest.raises(ValueError, match="int16"):
            embedder.embed(np.zeros((2, 8000), np.float32))


def test_deterministic_and_dequantised():
    audio = _int16_windows(2, 8000)
    embedder = HandcraftedEmbedder(list(FEATURES), 8000, 8000)
    first = embedder.embed(audio)
    assert first.shape == (2, embedder.dim) and first.dtype == np.float32
    np.testing.assert_array_equal(first, embedder.embed(audio))
    expected = window_features(audio[1].astype(np.float32) / 32768.0, 8000, list(FEATURES))
    np.testing.assert_array_equal(first[1], expected)


def test_silence_is_nan_free():
    embedder = HandcraftedEmbedder(list(FEATURES), 8000, 8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = embedder.embed(np.zeros((1, 8000), np.int16))
    assert np.isfinite(out).all()


def test_two_workers_equal_one():
    audio = _int16_windows(6, 8000, seed=2)
    names = ["mfcc", "cqt"]
    serial = HandcraftedEmbedder(names, 8000, 8000).embed(audio)
    with HandcraftedEmbedder(names, 8000, 8000, workers=2) as embedder:
        np.testing.assert_array_equal(embedder.embed(audio), serial)
        np.testing.assert_array_equal(embedder.embed(audio[:1]), serial[:1])  # the pool is reused
    with pytest.raises(RuntimeError, match="close"):
        embedder.embed(audio)
