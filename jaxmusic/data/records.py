"""The on-disk record of one clip, and the dataset manifest.

Record layout, schema version 1 (all integers little-endian; no pickle anywhere):

    offset 0   4 bytes   magic b"JMRC"
    offset 4   uint16    schema version
    offset 6   uint32    header length H in bytes
    offset 10  H bytes   UTF-8 JSON header:
                 {"id": str, "sample_rate": int, "num_samples": int,
                  "labels": {task: int | [int, ...] | float},
                  "caption": str | null}
    offset 10+H          int16 PCM, mono, num_samples values

JSON keeps the header readable by any language and extensible (new optional fields do
not need a version bump); raw int16 keeps audio compact and decodable without copies.
A reader refuses a record whose magic, version or length does not check out, so a
truncated shard can never be mistaken for data.

`manifest.json` beside the shards says what a prepared dataset holds; it is written
last, so its presence marks a complete dataset.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"JMRC"
SCHEMA_VERSION = 1
_PREFIX = struct.Struct("<4sHI")
MANIFEST = "manifest.json"


class RecordError(ValueError):
    """A record or dataset that is not in jaxmusic's schema."""


def encode(
    clip_id: str,
    audio: np.ndarray,
    sample_rate: int,
    labels: dict[str, Any],
    caption: str | None = None,
) -> bytes:
    """Serialise one clip; float audio in [-1, 1] is stored as int16."""
    if audio.ndim != 1:
        raise RecordError(f"{clip_id}: audio must be mono 1-D, got shape {audio.shape}")
    if audio.dtype != np.int16:
        audio = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    header = json.dumps(
        {
            "id": clip_id,
            "sample_rate": int(sample_rate),
            "num_samples": int(audio.shape[0]),
            "labels": labels,
            "caption": caption,
        },
        separators=(",", ":"),
    ).encode()
    return _PREFIX.pack(MAGIC, SCHEMA_VERSION, len(header)) + header + audio.astype("<i2").tobytes()


def decode_header(record: bytes) -> tuple[dict[str, Any], int]:
    """Parse and check a record's header; returns it and the offset of the PCM."""
    if len(record) < _PREFIX.size:
        raise RecordError("record shorter than its fixed prefix")
    magic, version, size = _PREFIX.unpack_from(record)
    if magic != MAGIC:
        raise RecordError(f"bad record magic {magic!r}: not a jaxmusic record")
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"record schema version {version}, this jaxmusic reads {SCHEMA_VERSION}: "
            "re-run `jaxmusic prepare` with this version"
        )
    start = _PREFIX.size + size
    header = json.loads(record[_PREFIX.size : start])
    if len(record) != start + 2 * header["num_samples"]:
        raise RecordError(f"record {header.get('id')!r} is truncated")
    return header, start


def decode_audio(record: bytes) -> np.ndarray:
    """The clip's PCM as int16, without copying."""
    header, start = decode_header(record)
    return np.frombuffer(record, dtype="<i2", count=header["num_samples"], offset=start)


def decode(record: bytes) -> dict[str, Any]:
    """The whole record: header fields plus `audio` (int16)."""
    header, start = decode_header(record)
    header["audio"] = np.frombuffer(record, dtype="<i2", count=header["num_samples"], offset=start)
    return header


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def read_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check a prepared dataset's manifest."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise RecordError(
            f"{data_dir} has no {MANIFEST}: prepare it first (e.g. `jaxmusic prepare synth --out {data_dir}`)"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise RecordError(
            f"{path}: schema version {manifest.get('schema_version')}, expected {SCHEMA_VERSION}: re-run prepare"
        )
    return manifest


def split_paths(data_dir: str | os.PathLike, split: str) -> list[str]:
    """The shard files of one split, in order, as listed in the manifest."""
    manifest = read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise RecordError(f"split '{split}' not in {data_dir} (has: {', '.join(manifest['splits'])})")
    return [str(Path(data_dir) / name) for name in manifest["splits"][split]["shards"]]
