import os
import struct

import numpy as np
import pytest
import soundfile as sf

from jaxmusic.prepare.audio_io import SUPPORTED_EXTENSIONS, AudioError, load_audio

TARGET = 22050
TONE = 440.0

# name: (suffix, soundfile.write arguments, channel counts the codec takes)
FORMATS = {
    "wav16": (".wav", {"subtype": "PCM_16"}, (1, 2, 6)),
    "wav24": (".wav", {"subtype": "PCM_24"}, (1, 2, 6)),
    "wavfloat": (".wav", {"subtype": "FLOAT"}, (1, 2, 6)),
    "flac": (".flac", {"subtype": "PCM_16"}, (1, 2, 6)),
    "ogg": (".ogg", {"format": "OGG", "subtype": "VORBIS"}, (1, 2, 6)),
    "mp3": (".mp3", {"format": "MP3"}, (1, 2)),
}
CASES = [
    (fmt, rate, ch)
    for fmt, (_, _, channels) in FORMATS.items()
    for rate in (8000, 22050, 44100, 48000)
    for ch in channels
]


def tone(rate, seconds=1.0, freq=TONE, amp=0.5):
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, audio, rate, fmt="wav16"):
    suffix, kwargs, _ = FORMATS[fmt]
    path = path.with_suffix(suffix)
    sf.write(path, audio, rate, **kwargs)
    return path


def peak_hz(audio, rate):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.argmax(spectrum) * rate / len(audio)


def test_supported_extensions_are_readable_here():
    assert {".wav", ".flac", ".ogg", ".mp3", ".aiff"} <= set(SUPPORTED_EXTENSIONS)
    assert all(e == e.lower() and e.startswith(".") for e in SUPPORTED_EXTENSIONS)


@pytest.mark.parametrize(("fmt", "rate", "channels"), CASES)
def test_decodes_length_and_pitch(tmp_path, fmt, rate, channels):
    # Each channel a different level of the same tone: the mono mix keeps the pitch.
    audio = tone(rate)[:, None] * np.linspace(1.0, 0.4, channels, dtype=np.float32)
    path = write(tmp_path / f"{fmt}_{rate}_{channels}", audio, rate, fmt)
    out = load_audio(path, TARGET)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - TARGET) <= 2
    assert np.abs(out).max() <= 1.0
    assert abs(peak_hz(out, TARGET) - TONE) <= 0.01 * TONE


def test_same_rate_is_not_resampled(tmp_path):
    audio = tone(TARGET)
    path = write(tmp_path / "same", audio, TARGET, "wavfloat")
    np.testing.assert_array_equal(load_audio(path, TARGET), audio)


def test_mixdown_is_the_mean_of_channels(tmp_path):
    left, right = tone(TARGET, amp=0.6), tone(TARGET, freq=660.0, amp=0.2)
    path = write(tmp_path / "stereo", np.stack([left, right], axis=1), TARGET, "wavfloat")
    np.testing.assert_allclose(load_audio(path, TARGET), (left + right) / 2, atol=1e-7)
    six = np.stack([tone(TARGET, amp=0.1 * (k + 1)) for k in range(6)], axis=1)
    path = write(tmp_path / "six", six, TARGET, "wavfloat")
    np.testing.assert_allclose(load_audio(path, TARGET), six.mean(axis=1), atol=1e-7)


def test_float_beyond_full_scale_is_clipped(tmp_path):
    path = write(tmp_path / "hot", tone(TARGET, amp=1.5), TARGET, "wavfloat")
    out = load_audio(path, TARGET)
    assert out.max() == 1.0 and out.min() == -1.0


def _wav_bytes(tmp_path, seconds=1.0):
    path = write(tmp_path / "src", tone(TARGET, seconds), TARGET)
    return path.read_bytes()


def _patched(tmp_path, name, offset, value):
    data = bytearray(_wav_bytes(tmp_path))
    data[offset : offset + len(value)] = value
    (tmp_path / name).write_bytes(bytes(data))
    return tmp_path / name


def _xing_frames(tmp_path, name, frames):
    """An MP3 whose Xing header claims `frames` MPEG frames (hours of audio)."""
    path = write(tmp_path / "src_mp3", tone(TARGET), TARGET, "mp3")
    data = bytearray(path.read_bytes())
    at = data.find(b"Xing")
    assert at > 0 and struct.unpack(">I", data[at + 4 : at + 8])[0] & 1
    data[at + 8 : at + 12] = struct.pack(">I", frames)
    (tmp_path / name).write_bytes(bytes(data))
    return tmp_path / name


def _put(d, name, data):
    (d / name).write_bytes(data)
    return d / name


def _cut(d, name, fmt, keep):
    whole = write(d / "src_cut", tone(TARGET, 3.0), TARGET, fmt).read_bytes()
    return _put(d, name, whole[: int(len(whole) * keep)])


def _symlink_to_nothing(d):
    os.symlink(d / "gone.wav", d / "a.wav")
    return d / "a.wav"


def _directory(d):
    (d / "a.wav").mkdir()
    return d / "a.wav"


def _spike(value, at):
    return np.where(np.arange(TARGET) == at, value, tone(TARGET)).astype(np.float32)


# Each broken kind: (builder(tmp_path) -> path, expected reason, load_audio keywords).
BROKEN = {
    "zero_bytes": (lambda d: _put(d, "a.wav", b""), "empty", {}),
    "text_as_wav": (lambda d: _put(d, "a.wav", b"not audio\n" * 50), "not_audio", {}),
    "random_as_mp3": (lambda d: _put(d, "a.mp3", np.random.default_rng(0).bytes(20000)), "not_audio", {}),
    "m4a": (lambda d: _put(d, "a.m4a", b"\0\0\0\x20ftypM4A " + bytes(100)), "unsupported_format", {}),
    "directory": (_directory, "not_a_file", {}),
    "dangling_link": (_symlink_to_nothing, "unreadable", {}),
    "corrupt_fmt_chunk": (lambda d: _patched(d, "a.wav", 20, b"\xff" * 16), "bad_header", {}),
    "zero_channels": (lambda d: _patched(d, "a.wav", 22, struct.pack("<H", 0)), "zero_channels", {}),
    "wav_cut_mid_data": (lambda d: _cut(d, "a.wav", "wav16", 0.5), "truncated", {}),
    "absurd_data_size": (lambda d: _patched(d, "a.wav", 40, struct.pack("<I", 0xFFFFFFF0)), "truncated", {}),
    "mp3_cut": (lambda d: _cut(d, "a.mp3", "mp3", 0.5), "truncated", {}),
    "flac_cut": (lambda d: _cut(d, "a.flac", "flac", 0.5), "corrupt", {}),
    "zero_frames": (lambda d: write(d / "a", np.zeros(0, np.float32), TARGET), "no_frames", {}),
    "too_short": (lambda d: write(d / "a", tone(TARGET, 0.1), TARGET), "too_short", {}),
    "too_long": (lambda d: write(d / "a", tone(TARGET, 3.0), TARGET), "too_long", {"max_seconds": 2.0}),
    "absurd_mp3_length": (lambda d: _xing_frames(d, "a.mp3", 0x00FFFFFF), "too_long", {}),
    "all_zero": (lambda d: write(d / "a", np.zeros(TARGET, np.float32), TARGET), "silent", {}),
    "anti_phase_stereo": (
        lambda d: write(d / "a", np.stack([tone(TARGET), -tone(TARGET)], axis=1), TARGET, "wavfloat"),
        "silent",
        {},
    ),
    "nan_samples": (lambda d: write(d / "a", _spike(np.nan, 5000), TARGET, "wavfloat"), "non_finite", {}),
    "inf_samples": (lambda d: write(d / "a", _spike(np.inf, 7), TARGET, "wavfloat"), "non_finite", {}),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_files_raise_their_reason(tmp_path, kind):
    build, reason, kwargs = BROKEN[kind]
    path = build(tmp_path)
    with pytest.raises(AudioError) as info:
        load_audio(path, TARGET, **kwargs)
    assert info.value.reason == reason, str(info.value)
    assert str(path) in str(info.value)
