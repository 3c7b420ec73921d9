"""The benchmarks' audio: synthetic clips as WAV files and as a prepared jaxmusic dataset."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from jaxmusic.data import synth
from jaxmusic.data.prepare import prepare_synth


def make_corpus(root: Path, clips: int, seconds: float, rate: int) -> tuple[list[str], str]:
    """`clips` clips of `seconds` at `rate`, as WAVs under root/wav and prepared under root/prepared.

    Both hold the same audio (the generator is deterministic), so the two pipelines do the
    same work. Returns the WAV paths and the prepared folder.
    """
    wav_dir, prepared = root / "wav", root / "prepared"
    wav_dir.mkdir(parents=True, exist_ok=True)
    # prepare_synth puts 70 % in train: ask for enough clips that train holds `clips`.
    total = -(-clips * 10 // 7)
    prepare_synth(prepared, clips=total, seed=0, sample_rate=rate, duration_s=seconds, progress=False)
    paths = []
    for i in range(clips):
        path = wav_dir / f"clip{i:05d}.wav"
        if not path.exists():
            clip = synth.generate_clip(0, i, sample_rate=rate, duration_s=seconds)
            sf.write(path, clip.audio, rate, subtype="PCM_16")
        paths.append(str(path))
    return paths, str(prepared)
