"""The benchmarks' audio: synthetic clips as WAV files and as a prepared jaxmusic dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import soundfile as sf
from array_record.python.array_record_module import ArrayRecordWriter

from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.prepare import synth
from jaxmusic.prepare.synthetic import prepare_synth


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


def legacy_copy(data_dir: str | os.PathLike, out: str | os.PathLike) -> str:
    """The same dataset in the layout jaxmusic wrote before schema 2: one whole record per
    clip, ArrayRecord's default (zstd) compression, no shard sizes in the manifest.

    What datasets prepared by earlier versions look like on disk, so that reading them can
    be tested and timed against the current layout.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = records.read_manifest(data_dir)
    for split, entry in manifest["splits"].items():
        source = open_split(str(data_dir), split)
        counts = [entry["shard_sizes"][name]["clips"] for name in entry["shards"]]
        first = 0
        for name, count in zip(entry["shards"], counts, strict=True):
            writer = ArrayRecordWriter(str(out / name), "group_size:1")
            for i in range(first, first + count):
                writer.write(source[i])
            writer.close()
            first += count
        del entry["shard_sizes"]
    manifest["schema_version"] = 1
    (out / records.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return str(out)
