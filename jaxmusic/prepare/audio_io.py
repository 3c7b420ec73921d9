"""Decoding one audio file into validated mono float32 at a chosen rate.

Every format goes through libsndfile (via soundfile), which reads by content, not by
file name: WAV/WAVE (8/16/24/32-bit integer and 32/64-bit float), RF64, W64, FLAC,
Ogg Vorbis, Ogg Opus, MPEG layer I/II/III (.mp3, .mp2), AIFF/AIFC, AU/SND and CAF.
MP3 and Opus are listed only where the local libsndfile can read them (1.1+ for MP3).
M4A/AAC, WMA, APE, WavPack and Matroska/WebM are not readable here: such files are
recognised and refused with reason `unsupported_format`, so a folder of them is
reported rather than silently ignored.

`load_audio` streams the file block by block (mixing down and resampling as it goes),
so an hour-long multichannel file never sits in memory at its source rate.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

# soxr's "HQ" is 20-bit precise, more than the int16 the records store; VHQ costs more
# for no audible or measurable difference after quantisation.
RESAMPLE_QUALITY = "HQ"
_BLOCK_FRAMES = 1 << 16
# Below one 16-bit step the clip would be stored as all zeros.
SILENCE_PEAK = 1.0 / 32768.0
# mpg123 estimates an MP3's length when no Xing/Info frame states it; tolerate a short
# decode of up to 1 % (plus two MPEG frames) before calling the file truncated.
_ESTIMATED_LENGTH_FORMATS = {"MP3"}


def _supported_extensions() -> tuple[str, ...]:
    formats = sf.available_formats()
    exts = [".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc", ".au", ".snd", ".caf", ".w64"]
    if "MP3" in formats:
        exts += [".mp3", ".mp2"]
    if "OPUS" in sf.available_subtypes("OGG"):
        exts.append(".opus")
    return tuple(sorted(exts))


SUPPORTED_EXTENSIONS: tuple[str, ...] = _supported_extensions()
# Audio that libsndfile cannot decode: walked anyway so that it is reported as rejected.
UNSUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".m4a",
    ".aac",
    ".mp4",
    ".alac",
    ".wma",
    ".ape",
    ".wv",
    ".mka",
    ".webm",
)

# File signatures (offset, bytes): a file that starts like audio but does not open is
# malformed ("bad_header"); one that starts like nothing known is "not_audio". A bare
# MPEG frame sync is left out: one random file in a few hundred starts with a valid one.
_AUDIO_MAGIC = (
    (0, b"RIFF"),
    (0, b"RIFX"),
    (0, b"RF64"),
    (0, b"BW64"),
    (0, b"riff"),  # W64
    (0, b"FORM"),  # AIFF/AIFC
    (0, b"fLaC"),
    (0, b"OggS"),
    (0, b"ID3"),
    (0, b".snd"),
    (0, b"caff"),
)
_UNSUPPORTED_MAGIC = (
    (4, b"ftyp"),  # MP4/M4A/ALAC
    (0, bytes.fromhex("3026b2758e66cf11")),  # ASF/WMA
    (0, b"MAC "),  # Monkey's Audio
    (0, b"wvpk"),  # WavPack
    (0, bytes.fromhex("1a45dfa3")),  # Matroska/WebM
    (0, b"ADIF"),
)
# libsndfile's log line for a data chunk whose declared size the file does not hold,
# e.g. "data : 4294967280 (should be 88200)" (WAV family) or "SSND : ..." (AIFF).
_DATA_SIZE_MISMATCH = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Sizes that streaming writers put in a header whose final length they did not know.
_PLACEHOLDER_SIZES = {0, 0xFFFFFFFF}


class AudioError(ValueError):
    """A file that cannot become a clip; `reason` is a short stable code.

    Reasons: not_a_file, unreadable, empty, not_audio, unsupported_format, bad_header,
    zero_channels, truncated, corrupt, no_frames, too_short, too_long, non_finite, silent.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    min_seconds: float = 0.5,
    max_seconds: float = 3600.0,
) -> np.ndarray:
    """Decode any channel count / bit depth / rate, mix to mono (mean of channels),
    resample with soxr (HQ) and return float32 in [-1, 1]; raise AudioError for
    anything unusable.

    Lengths are checked at the source rate. Float files with samples beyond [-1, 1]
    are clipped, as they would be on playback.
    """
    path = Path(path)
    _check_file(path)
    try:
        f = sf.SoundFile(str(path))
    except sf.LibsndfileError as e:
        raise _open_error(path, e) from None
    except OSError as e:
        raise AudioError("unreadable", f"{path}: cannot be read ({e})") from None
    with f:
        rate, channels, declared = f.samplerate, f.channels, f.frames
        if channels < 1:
            raise AudioError("zero_channels", f"{path}: the header declares no channels")
        if rate <= 0:
            raise AudioError("bad_header", f"{path}: the header declares sample rate {rate}")
        if declared / rate > max_seconds:
            raise AudioError(
                "too_long",
                f"{path}: {declared / rate:.1f} s declared, more than the {max_seconds:g} s allowed",
            )
        _check_declared_size(path, f.extra_info)
        mono, read, peak = _decode(path, f, sample_rate, max_seconds)
        fmt = f.format
    if read == 0:
        raise AudioError("no_frames", f"{path}: the file holds no audio frames")
    tolerance = 0.01 * declared + 2304 if fmt in _ESTIMATED_LENGTH_FORMATS else 0
    if read < declared - tolerance:
        raise AudioError("truncated", f"{path}: decoded {read} of the {declared} frames its header declares")
    if read / rate < min_seconds:
        raise AudioError(
            "too_short", f"{path}: {read / rate:.3f} s, less than the {min_seconds:g} s required"
        )
    if peak < SILENCE_PEAK:
        raise AudioError("silent", f"{path}: silent (peak {peak:.2e} after mixing to mono)")
    return np.clip(mono, -1.0, 1.0, out=mono)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise AudioError("not_a_file", f"{path}: is a directory")
    # Checked before opening: opening a FIFO would block.
    if path.exists() and not path.is_file():
        raise AudioError("not_a_file", f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as e:
        raise AudioError("unreadable", f"{path}: cannot be read ({e.strerror or e})") from None
    if size == 0:
        raise AudioError("empty", f"{path}: the file is empty (0 bytes)")


def _open_error(path: Path, error: sf.LibsndfileError) -> AudioError:
    """Name why libsndfile refused to open a file, from its message and first bytes."""
    message = str(error).split(": ", 1)[-1]
    if "Channel count is zero" in message:
        return AudioError("zero_channels", f"{path}: the header declares no channels")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as e:
        return AudioError("unreadable", f"{path}: cannot be read ({e})")
    if _starts_with(head, _UNSUPPORTED_MAGIC):
        return AudioError(
            "unsupported_format", f"{path}: a format libsndfile cannot decode (e.g. M4A/AAC, WMA)"
        )
    if _starts_with(head, _AUDIO_MAGIC):
        return AudioError("bad_header", f"{path}: looks like audio but its header is malformed ({message})")
    # libsndfile's own message here can mislead ("File does not exist ..." for noise).
    return AudioError("not_audio", f"{path}: not an audio file (its content matches no format read here)")


def _starts_with(head: bytes, signatures: tuple[tuple[int, bytes], ...]) -> bool:
    return any(head[offset : offset + len(magic)] == magic for offset, magic in signatures)


def _check_declared_size(path: Path, log: str) -> None:
    """libsndfile quietly shortens a WAV/AIFF whose data chunk runs past the end of the
    file; a download cut short must not pass as a shorter clip."""
    for declared_text, actual_text in _DATA_SIZE_MISMATCH.findall(log):
        declared, actual = int(declared_text), int(actual_text)
        if declared not in _PLACEHOLDER_SIZES and declared > actual:
            raise AudioError(
                "truncated", f"{path}: the header declares {declared} bytes of audio, the file holds {actual}"
            )


def _decode(
    path: Path, f: sf.SoundFile, sample_rate: int, max_seconds: float
) -> tuple[np.ndarray, int, float]:
    """Stream `f` into mono at `sample_rate`; returns (audio, source frames, peak)."""
    rate = f.samplerate
    resampler = (
        None
        if rate == sample_rate
        else soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    )
    buffer = np.empty((_BLOCK_FRAMES, f.channels), np.float32)
    parts, read, peak = [], 0, 0.0
    while True:
        try:
            block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True, out=buffer)
        except sf.LibsndfileError as e:
            raise AudioError("corrupt", f"{path}: decoding failed after {read} frames ({e})") from None
        if len(block) == 0:
            break
        mono = block[:, 0].copy()
        # Column by column: numpy's mean over a short axis is several times slower.
        for c in range(1, f.channels):
            mono += block[:, c]
        if f.channels > 1:
            mono /= f.channels
        if not np.isfinite(mono).all():
            bad = read + int(np.argmin(np.isfinite(mono)))
            raise AudioError("non_finite", f"{path}: NaN or infinite sample at {bad / rate:.3f} s")
        peak = max(peak, float(np.abs(mono).max()))
        read += len(block)
        if read / rate > max_seconds:
            raise AudioError("too_long", f"{path}: longer than the {max_seconds:g} s allowed")
        parts.append(mono if resampler is None else resampler.resample_chunk(mono))
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return audio.astype(np.float32, copy=False), read, peak
