"""Tests for the synthetic music clip generator."""

import collections
import json
import re
import time

import numpy as np
import pytest

from jaxmusic.prepare import synth

SR = 8000
DUR = 3.0
N_CLIPS = 240


@pytest.fixture(scope="module")
def clips() -> list[synth.SynthClip]:
    return [synth.generate_clip(0, i, sample_rate=SR, duration_s=DUR) for i in range(N_CLIPS)]


def _tag(name: str) -> int:
    return synth.TAGS.index(name)


def _chroma(audio: np.ndarray, sr: int) -> np.ndarray:
    """Pitch-class energy from one FFT of the whole clip."""
    power = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1.0 / sr)
    band = (freqs > 50) & (freqs < 2000)
    pitch_class = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    return np.bincount(pitch_class, weights=power[band], minlength=12)


def test_vocabularies_and_constants() -> None:
    assert synth.SAMPLE_RATE_DEFAULT == 16000
    assert len(synth.KEYS) == 24 and len(set(synth.KEYS)) == 24
    assert synth.KEYS[0] == "C major" and synth.KEYS[1] == "C minor" and synth.KEYS[2 * 9 + 1] == "A minor"
    assert synth.TAGS[:6] == ("pad", "pluck", "bell", "lead", "bass", "drums")
    assert len(synth.STYLES) >= 5 and len(set(synth.TAGS)) == len(synth.TAGS)
    vocab = synth.task_vocabularies()
    assert vocab["style"] == {"kind": "single", "classes": list(synth.STYLES)}
    assert vocab["tags"] == {"kind": "multi", "classes": list(synth.TAGS)}
    assert vocab["key"] == {"kind": "single", "classes": list(synth.KEYS)}
    assert vocab["tempo"]["kind"] == "regression" and vocab["tempo"]["unit"] == "bpm"
    lo, hi = vocab["tempo"]["range"]
    assert lo == synth.TEMPO_RANGE[0] < hi == synth.TEMPO_RANGE[1]
    json.dumps(vocab)


def test_determinism_and_order_independence() -> None:
    a = synth.generate_clip(7, 3, sample_rate=SR, duration_s=2.0)
    synth.generate_clip(7, 0, sample_rate=SR, duration_s=2.0)  # interleaved work must not matter
    b = synth.generate_clip(7, 3, sample_rate=SR, duration_s=2.0)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert synth.clip_labels(a) == synth.clip_labels(b) and a.caption == b.caption
    c = synth.generate_clip(7, 4, sample_rate=SR, duration_s=2.0)
    d = synth.generate_clip(8, 3, sample_rate=SR, duration_s=2.0)
    assert not np.array_equal(a.audio, c.audio) and not np.array_equal(a.audio, d.audio)


@pytest.mark.parametrize(("sr", "dur"), [(8000, 3.0), (16000, 1.5), (22050, 0.7), (8000, 0.05)])
def test_audio_format(sr: int, dur: float) -> None:
    for i in range(6):
        clip = synth.generate_clip(1, i, sample_rate=sr, duration_s=dur)
        assert clip.audio.dtype == np.float32 and clip.audio.shape == (round(sr * dur),)
        assert np.all(np.isfinite(clip.audio)) and np.abs(clip.audio).max() <= 1.0
        assert np.sqrt(np.mean(clip.audio.astype(np.float64) ** 2)) > 10 ** (-40 / 20)


def test_labels_valid_and_covering(clips: list[synth.SynthClip]) -> None:
    for clip in clips:
        labels = synth.clip_labels(clip)
        assert json.loads(json.dumps(labels)) == labels
        assert 0 <= clip.style < len(synth.STYLES) and 0 <= clip.key < len(synth.KEYS)
        assert clip.tags and list(clip.tags) == sorted(set(clip.tags))
        assert all(0 <= t < len(synth.TAGS) for t in clip.tags)
        assert any(t < 6 for t in clip.tags)  # at least one instrument
        spec = synth._STYLE_SPECS[clip.style]
        assert spec.tempo[0] <= clip.tempo <= spec.tempo[1]
        assert synth.TEMPO_RANGE[0] <= clip.tempo <= synth.TEMPO_RANGE[1]
        assert (_tag("fast") in clip.tags) == (clip.tempo >= synth.FAST_BPM)
        assert (_tag("slow") in clip.tags) == (clip.tempo < synth.SLOW_BPM)
        level = 10 * np.log10(np.mean(clip.audio.astype(np.float64) ** 2))
        assert (_tag("loud") in clip.tags) == (level >= synth.LOUD_DB)
        assert (_tag("quiet") in clip.tags) == (level <= synth.QUIET_DB)
        for inst in spec.always:
            assert _tag(inst) in clip.tags
    assert {c.style for c in clips} == set(range(len(synth.STYLES)))
    assert {c.key for c in clips} == set(range(len(synth.KEYS)))
    tag_counts = collections.Counter(t for c in clips for t in c.tags)
    assert set(tag_counts) == set(range(len(synth.TAGS)))  # every tag occurs
    assert max(collections.Counter(c.style for c in clips).values()) < 0.3 * N_CLIPS


def test_drum_tag_iff_drums_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = synth._drum_kit
    monkeypatch.setattr(synth, "_drum_kit", lambda *a: calls.append(1) or real(*a))
    drum_free = {i for i, s in enumerate(synth._STYLE_SPECS) if s.drums is None}
    seen = collections.Counter()
    for i in range(80):
        calls.clear()
        clip = synth.generate_clip(2, i, sample_rate=SR, duration_s=1.0)
        has = _tag("drums") in clip.tags
        assert has == bool(calls)
        assert not (has and clip.style in drum_free)
        seen[has] += 1
    assert seen[True] > 10 and seen[False] > 10


def test_captions_vary_and_state_key_and_tempo(clips: list[synth.SynthClip]) -> None:
    by_style = collections.defaultdict(set)
    for clip in clips:
        assert synth.KEYS[clip.key] in clip.caption
        assert re.search(rf"\b{round(clip.tempo)} (BPM|beats per minute)\b", clip.caption)
        assert clip.caption[0].isupper() or clip.caption[0].isdigit()
        assert clip.caption.endswith(".")
        by_style[clip.style].add(clip.caption)
    assert all(len(caps) >= 10 for caps in by_style.values())
    # Same attributes, different wording: captions come from their own random stream.
    same = [c.caption for c in clips if c.style == clips[0].style]
    assert len({c.split(" in ")[0] for c in same}) >= 5


def test_tonic_is_salient_in_chroma(clips: list[synth.SynthClip]) -> None:
    drum_free = [c for c in clips if _tag("drums") not in c.tags]
    assert len(drum_free) >= 40
    hits = 0
    for clip in drum_free:
        top3 = np.argsort(_chroma(clip.audio, SR))[::-1][:3]
        hits += int(clip.key // 2 in top3)
    assert hits / len(drum_free) >= 0.75


def test_generation_speed() -> None:
    synth.generate_clip(0, 0, sample_rate=SR, duration_s=5.0)  # warm caches / imports
    start = time.perf_counter()
    for i in range(200):
        synth.generate_clip(5, i, sample_rate=SR, duration_s=5.0)
    assert time.perf_counter() - start < 10.0
