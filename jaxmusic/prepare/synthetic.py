"""`jaxmusic prepare synth`: the built-in synthetic music as a prepared dataset, and
`ensure_dataset`, which prepares it for a config that names no dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
from jax.experimental import multihost_utils
from tqdm import tqdm

from jaxmusic.data import records
from jaxmusic.prepare import shards, synth
from jaxmusic.prepare.manifest import split_entry, write_manifest

SPLIT_FRACTIONS = (("train", 0.7), ("valid", 0.15), ("test", 0.15))
CLIPS_PER_SHARD = 256


def split_counts(num_clips: int) -> dict[str, int]:
    """How many of `num_clips` go to each split (train takes the rounding)."""
    if num_clips < 10:
        raise ValueError(f"--clips must be at least 10 to fill three splits, got {num_clips}")
    valid = int(num_clips * SPLIT_FRACTIONS[1][1])
    test = int(num_clips * SPLIT_FRACTIONS[2][1])
    return {"train": num_clips - valid - test, "valid": valid, "test": test}


def prepare_synth(
    out: str | Path,
    *,
    clips: int,
    seed: int = 0,
    sample_rate: int = synth.SAMPLE_RATE_DEFAULT,
    duration_s: float = 5.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the built-in synthetic music dataset; returns its manifest.

    Deterministic in (clips, seed, sample_rate, duration_s). An existing complete
    dataset with the same parameters is reused; an interrupted one is finished.
    """
    out = Path(out)
    params = {"clips": clips, "seed": seed, "sample_rate": sample_rate, "duration_s": duration_s}
    manifest_path = out / records.MANIFEST
    if manifest_path.exists():
        manifest = records.read_manifest(out)
        if manifest.get("source", {}).get("params") == params:
            return manifest
        raise FileExistsError(
            f"{out} already holds a different dataset ({manifest.get('source')}): choose another --out"
        )
    with shards.writing(out):
        out.mkdir(parents=True, exist_ok=True)
    counts = split_counts(clips)
    start = time.time()
    bar = tqdm(total=clips, desc="prepare synth", unit="clip", disable=not progress)
    try:
        splits: dict[str, Any] = {}
        offset = 0
        for split, n in counts.items():
            base = offset

            def make_record(i: int, base: int = base, split: str = split) -> bytes:
                clip = synth.generate_clip(seed, base + i, sample_rate=sample_rate, duration_s=duration_s)
                return records.encode(
                    f"synth-{seed}-{base + i:06d}",
                    clip.audio,
                    sample_rate,
                    synth.clip_labels(clip),
                    clip.caption,
                )

            sizes = shards.write_split(
                out, split, n, -(-n // CLIPS_PER_SHARD), make_record, lambda: bar.update(1)
            )
            clip_samples = round(duration_s * sample_rate)
            splits[split] = split_entry(
                out, list(sizes), [v["clips"] for v in sizes.values()], n * clip_samples, sample_rate
            )
            offset += n
    finally:
        bar.close()  # before any error message, so that it starts a line
    manifest = write_manifest(
        out, name="synth", sample_rate=sample_rate, splits=splits, tasks=synth.task_vocabularies(),
        source={"kind": "synth", "params": params}, started=start, clip_samples=round(duration_s * sample_rate),
    )  # fmt: skip
    return manifest


def ensure_dataset(config: ml_collections.ConfigDict, workdir: str | Path) -> ml_collections.ConfigDict:
    """Point `data.dir` at a dataset: a config with an empty `data.dir` gets the built-in
    synthetic music described by `config.synth`, prepared once under `workdir/synth`."""
    if config.data.dir:
        return config
    config = ml_collections.ConfigDict(config.to_dict())
    out = Path(workdir) / "synth"
    if jax.process_index() == 0:
        prepare_synth(out, progress=config.progress_bar, **config.synth.to_dict())
    if jax.process_count() > 1:
        # The others wait for process 0's dataset rather than race to write it.
        multihost_utils.sync_global_devices("jaxmusic prepared synth")
    config.data.dir = str(out.absolute())
    return config
