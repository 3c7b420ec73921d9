"""Benchmark: `prepare` speed, seconds of audio per second per core, for WAV and MP3 input.

Input: synthetic 30 s clips written as 44.1 kHz stereo 16-bit WAV and as MP3, prepared to
22.05 kHz mono with one worker process (per core). Reference measured in the same run:
`librosa.load(path, sr=22050, mono=True)` on the same files, the usual way to get
training audio in Python (decode + mono + soxr resampling, nothing written).

    python benchmarks/prepare_speed.py [--clips 16]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from jaxmusic.prepare import synth
from jaxmusic.prepare.folder import prepare_folder

RATE_IN, RATE_OUT, SECONDS = 44100, 22050, 30.0


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=16)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("WAV", "MP3"):
            folder = Path(tmp) / fmt
            folder.mkdir()
            paths = []
            for i in range(args.clips):
                mono = synth.generate_clip(0, i, sample_rate=RATE_IN, duration_s=SECONDS).audio
                stereo = np.stack([mono, 0.8 * mono], axis=1)
                path = folder / f"clip{i:03d}.{fmt.lower()}"
                sf.write(path, stereo, RATE_IN, format=fmt, **({"subtype": "PCM_16"} if fmt == "WAV" else {}))
                paths.append(path)
            librosa.load(paths[0], sr=RATE_OUT, mono=True)  # warm caches
            ref = timed(lambda paths=paths: [librosa.load(q, sr=RATE_OUT, mono=True) for q in paths])
            ours = timed(
                lambda fmt=fmt, folder=folder: prepare_folder(
                    folder, Path(tmp) / f"{fmt}-out", sample_rate=RATE_OUT, workers=1, progress=False
                )
            )
            audio = args.clips * SECONDS
            rows.append((fmt, audio / ours[0], audio / ours[1], audio / ref[0], audio / ref[1]))
    print(f"{args.clips} clips of {SECONDS:.0f} s, {RATE_IN} Hz stereo -> {RATE_OUT} Hz mono, 1 worker")
    print("| input | prepare: audio s per s | per CPU-second | librosa.load: audio s per s | per CPU-second "
          "| prepare / librosa (per CPU-second) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for fmt, a, b, c, d in rows:
        print(f"| {fmt} | {a:.0f} | {b:.0f} | {c:.0f} | {d:.0f} | {b / d:.2f}x |")


if __name__ == "__main__":
    main()
