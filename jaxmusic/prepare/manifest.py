"""The one manifest writer: `manifest.json`, written last, marks a prepared dataset complete.

Its schema (and reader) is the record schema's, in `jaxmusic.data.records`: preparation
writes what the input side reads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxmusic.data import records
from jaxmusic.prepare import shards


def split_entry(
    out: Path, names: Sequence[str], clips: Sequence[int], samples: int, sample_rate: int
) -> dict:
    """A split's manifest entry: its shards, their sizes, its clips and seconds."""
    return {
        "shards": list(names),
        "shard_sizes": shards.shard_sizes(out, names, clips),
        "clips": sum(clips),
        "seconds": samples / sample_rate,
    }


def write_manifest(
    out: Path,
    *,
    name: str,
    sample_rate: int,
    splits: dict[str, dict],
    tasks: dict[str, dict],
    source: dict[str, Any],
    started: float,
    **extra: Any,
) -> dict[str, Any]:
    """Write `out/manifest.json` atomically and return it; `extra` adds dataset-specific keys."""
    manifest = {
        "schema_version": records.SCHEMA_VERSION,
        "name": name,
        "sample_rate": sample_rate,
        "splits": splits,
        "tasks": tasks,
        "source": source,
        **extra,
        "prepare_seconds": round(time.time() - started, 2),
    }
    with shards.writing(out / records.MANIFEST):
        records.write_json_atomic(out / records.MANIFEST, manifest)
    return manifest
