"""Embedding extraction: windows as CLMR cuts them, streamed to a cache that a killed
run resumes and a changed embedder never reuses; perturbations at the asked SNR;
external embeddings aligned to the dataset by clip id."""

import numpy as np
import pytest

from jaxmusic.config import ConfigError
from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.evaluate import extract as ex
from jaxmusic.evaluate.external import ExternalEmbeddings


class Spectrum:
    """A small real embedder (log band energies), with a failure switch for the kill test."""

    name = "spectrum"
    sample_rate = 8000

    def __init__(self, window: int = 2000, fail_after: int | None = None) -> None:
        self.window_samples = window
        self.fail_after = fail_after
        self.calls = 0

    def identity(self):
        return {"kind": "test-spectrum", "window": self.window_samples}

    def embed(self, audio):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # as a killed process: nothing after this is written
        spec = np.abs(np.fft.rfft(audio.astype(np.float32) / 32768.0, axis=1)) ** 2
        bands = np.array_split(spec, 8, axis=1)
        return np.log(np.stack([b.mean(1) for b in bands], axis=1) + 1e-8).astype(np.float32)


def test_windows_cut_pad_and_drop() -> None:
    a = np.arange(10, dtype=np.int16)
    np.testing.assert_array_equal(ex.windows(a, 4), [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(ex.windows(a[:3], 4), [[0, 1, 2, 0]])


def test_extract_covers_every_window_and_is_cached(tiny_data, tmp_path) -> None:
    emb = Spectrum()
    folder = ex.extract(emb, tiny_data, "valid", tmp_path, progress=False)
    got = ex.load(folder)
    source = open_split(tiny_data, "valid")
    expected = [ex.windows(records.decode_audio(source[i]), 2000) for i in range(len(source))]
    np.testing.assert_array_equal(
        got["window_clip"], np.repeat(np.arange(len(source)), [len(w) for w in expected])
    )
    np.testing.assert_allclose(
        got["window_embeddings"], Spectrum().embed(np.concatenate(expected)), rtol=1e-6
    )
    calls = emb.calls
    assert ex.extract(emb, tiny_data, "valid", tmp_path, progress=False) == folder
    assert emb.calls == calls  # a cache hit embeds nothing
    other = ex.extract(Spectrum(window=1000), tiny_data, "valid", tmp_path, progress=False)
    assert other != folder  # another embedder never reads these


def test_killed_extraction_resumes_to_the_same_result(tiny_data, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ex, "_GROUP_WINDOWS", 4)  # several groups on a tiny split
    whole = ex.load(ex.extract(Spectrum(), tiny_data, "train", tmp_path / "a", progress=False))
    with pytest.raises(KeyboardInterrupt):
        ex.extract(Spectrum(fail_after=2), tiny_data, "train", tmp_path / "b", progress=False)
    folder = ex.cache_dir(Spectrum(), tiny_data, "train", tmp_path / "b", ex.CLEAN)
    assert not (folder / ex.COMPLETE).exists()
    resumed_embedder = Spectrum()
    resumed = ex.load(ex.extract(resumed_embedder, tiny_data, "train", tmp_path / "b", progress=False))
    total_groups = Spectrum()
    ex.extract(total_groups, tiny_data, "train", tmp_path / "c", progress=False)
    assert resumed_embedder.calls == total_groups.calls - 2  # the two finished groups were kept
    np.testing.assert_array_equal(resumed["window_embeddings"], whole["window_embeddings"])


def test_perturbation_snr_and_gain() -> None:
    rng = np.random.default_rng(0)
    clean = (rng.normal(size=8000) * 3000).astype(np.int16)
    for snr in (20.0, 10.0, 0.0):
        noisy = ex.Perturbation(snr_db=snr).apply(clean, clip_index=3)
        noise = noisy.astype(np.float64) - clean
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.3)
    quieter = ex.Perturbation(gain_db=-12.0).apply(clean, 0)
    assert 20 * np.log10(np.std(quieter) / np.std(clean)) == pytest.approx(-12.0, abs=0.05)
    np.testing.assert_array_equal(
        ex.Perturbation(snr_db=5.0).apply(clean, 1), ex.Perturbation(snr_db=5.0).apply(clean, 1)
    )


def test_extract_refuses_another_sample_rate(tiny_data, tmp_path) -> None:
    emb = Spectrum()
    emb.sample_rate = 16000
    with pytest.raises(ConfigError, match="16000 Hz"):
        ex.extract(emb, tiny_data, "valid", tmp_path, progress=False)


def test_external_embeddings_align_by_clip_id(tiny_data, tmp_path) -> None:
    ids, _ = ex.split_labels(tiny_data, "valid")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(len(ids), 5)).astype(np.float32)
    order = rng.permutation(len(ids))
    folder = tmp_path / "ext"
    folder.mkdir()
    np.savez(folder / "valid.npz", clip_ids=np.asarray(ids)[order], embeddings=x[order])
    ext = ExternalEmbeddings(folder)
    got = ext.split("valid", ids)
    np.testing.assert_array_equal(got["window_embeddings"], x)
    np.testing.assert_array_equal(got["window_clip"], np.arange(len(ids)))
    with pytest.raises(ConfigError, match="no train.npz"):
        ext.check(["train"])
    np.savez(folder / "train.npz", clip_ids=np.asarray(ids[:-1]), embeddings=x[:-1])
    with pytest.raises(ConfigError, match="lacks 1 of"):
        ext.split("train", ids)
