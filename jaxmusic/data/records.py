"""The on-disk record of one clip, the shard layout that stores records, and the manifest.

Record layout, version 1 (all integers little-endian; no pickle anywhere):

    offset 0   4 bytes   magic b"JMRC"
    offset 4   uint16    record version
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

Dataset schema 2 (the manifest's `schema_version`) stores each record in an
uncompressed ArrayRecord shard as several ArrayRecord records: the record's prefix and
header, then its PCM in chunks of `chunk_samples` (the last one shorter), and after the
last clip one index record:

    b"JMIX", uint16 index version 1, uint32 chunk_samples, uint64 clips N,
    int64[N + 1] position of each clip's first record (then of the index itself),
    int64[N] num_samples of each clip

A training crop then reads only the chunks it overlaps, not the whole track; PCM barely
compresses, so compression bought little space for most of the read time. Schema 1
(one whole record per ArrayRecord record, zstd-compressed) is still read.

`manifest.json` beside the shards says what a prepared dataset holds, including each
shard's clip count and byte size, which are checked whenever a split is opened; it is
written last, so its presence marks a complete dataset.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from array_record.python.array_record_module import ArrayRecordReader

MAGIC = b"JMRC"
RECORD_VERSION = 1
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
_PREFIX = struct.Struct("<4sHI")
INDEX_MAGIC = b"JMIX"
_INDEX = struct.Struct("<4sHIQ")
MANIFEST = "manifest.json"
# Keys every manifest must have, and every split of it.
MANIFEST_KEYS = ("schema_version", "name", "sample_rate", "splits", "tasks")
SPLIT_KEYS = ("shards", "clips")
# Random access: no read-ahead, no thread pool; a larger buffer only copies more.
_READER_OPTIONS = "readahead_buffer_size:0,max_parallelism:0"
_READER_BUFFER = 32768


class RecordError(ValueError):
    """A record or dataset that is not in jaxmusic's schema, or a damaged one."""


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
    return _PREFIX.pack(MAGIC, RECORD_VERSION, len(header)) + header + audio.astype("<i2").tobytes()


def parse_header(record: bytes) -> tuple[dict[str, Any], int]:
    """Parse and check a record's prefix and header, which may stand alone (as the first
    part of a chunked record does); returns the header and the offset of the PCM."""
    if len(record) < _PREFIX.size:
        raise RecordError("record shorter than its fixed prefix")
    magic, version, size = _PREFIX.unpack_from(record)
    if magic != MAGIC:
        raise RecordError(f"bad record magic {magic!r}: not a jaxmusic record")
    if version != RECORD_VERSION:
        raise RecordError(
            f"record schema version {version}, this jaxmusic reads {RECORD_VERSION}: "
            "re-run `jaxmusic prepare` with this version"
        )
    start = _PREFIX.size + size
    return json.loads(record[_PREFIX.size : start]), start


def decode_header(record: bytes) -> tuple[dict[str, Any], int]:
    """Parse and check a whole record's header; returns it and the offset of the PCM."""
    header, start = parse_header(record)
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


def encode_index(chunk_samples: int, first_records: Sequence[int], num_samples: Sequence[int]) -> bytes:
    """A schema-2 shard's closing index record (see the module docstring)."""
    n = len(num_samples)
    if len(first_records) != n + 1:
        raise ValueError("first_records needs one more entry than there are clips")
    return (
        _INDEX.pack(INDEX_MAGIC, 1, chunk_samples, n)
        + np.asarray(first_records, "<i8").tobytes()
        + np.asarray(num_samples, "<i8").tobytes()
    )


def decode_index(raw: bytes) -> tuple[int, np.ndarray, np.ndarray]:
    """(chunk_samples, first record of each clip and of the index, num_samples of each clip)."""
    if len(raw) < _INDEX.size:
        raise RecordError("not a shard index record (too short)")
    magic, version, chunk, n = _INDEX.unpack_from(raw)
    if magic != INDEX_MAGIC or version != 1 or len(raw) != _INDEX.size + 8 * (2 * n + 1):
        raise RecordError("not a shard index record")
    first = np.frombuffer(raw, "<i8", n + 1, _INDEX.size)
    return chunk, first, np.frombuffer(raw, "<i8", n, _INDEX.size + 8 * (n + 1))


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one, never a part."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk, say) leaves nothing behind
        raise


def reprepare(data_dir: str | os.PathLike) -> str:
    """What to do about a damaged dataset, as the end of an error message."""
    return f"delete {data_dir} and re-run the `jaxmusic prepare` command that made it"


def read_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check a prepared dataset's manifest: valid JSON, a schema this version
    reads, and every key a reader relies on."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise RecordError(
            f"{data_dir} has no {MANIFEST}: prepare it first (e.g. `jaxmusic prepare synth --out {data_dir}`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        reason = f"{e.msg}, line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise RecordError(f"{path}: not valid JSON ({reason}): {reprepare(data_dir)}") from None
    if not isinstance(manifest, dict):
        raise RecordError(f"{path}: not a JSON object: {reprepare(data_dir)}")
    for key in MANIFEST_KEYS:
        if key not in manifest:
            raise RecordError(f"{path}: incomplete manifest, no '{key}': {reprepare(data_dir)}")
    if manifest["schema_version"] not in READABLE_SCHEMAS:
        raise RecordError(
            f"{path}: schema version {manifest['schema_version']}, this jaxmusic reads "
            f"{', '.join(map(str, READABLE_SCHEMAS))}: {reprepare(data_dir)}"
        )
    if not isinstance(manifest["splits"], dict):
        raise RecordError(f"{path}: 'splits' is not an object: {reprepare(data_dir)}")
    for split, entry in manifest["splits"].items():
        for key in SPLIT_KEYS:
            if not isinstance(entry, dict) or key not in entry:
                raise RecordError(f"{path}: split '{split}' has no '{key}': {reprepare(data_dir)}")
    return manifest


def split_paths(data_dir: str | os.PathLike, split: str) -> list[str]:
    """The shard files of one split, in order, as listed in the manifest."""
    manifest = read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise RecordError(f"split '{split}' not in {data_dir} (has: {', '.join(manifest['splits'])})")
    return [str(Path(data_dir) / name) for name in manifest["splits"][split]["shards"]]


def _damaged(path: str, what: str, error: Exception) -> RecordError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return RecordError(f"{path}: {what} is damaged ({reason[:200]}): {reprepare(Path(path).parent)}")


class _Shard:
    """One shard file, opened on first use (so that it pickles into data workers)."""

    def __init__(self, path: str, schema: int, clips: int | None = None):
        self.path, self.schema = path, schema
        self._reader: ArrayRecordReader | None = None
        self._lock = threading.Lock()
        self.chunk = 0
        self.first = self.lengths = np.zeros(0, np.int64)
        self.clips = clips
        if clips is None:  # not in the manifest: count what the file holds
            reader = self.reader()
            self.clips = reader.num_records() if schema == 1 else len(self.lengths)

    def reader(self) -> ArrayRecordReader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    try:
                        reader = ArrayRecordReader(
                            self.path, _READER_OPTIONS, file_reader_buffer_size=_READER_BUFFER
                        )
                        if self.schema == 2:
                            last = reader.num_records() - 1
                            self.chunk, self.first, self.lengths = decode_index(reader.read([last])[0])
                    except (RuntimeError, ValueError, OSError) as e:
                        raise _damaged(self.path, "the file", e) from None
                    if self.schema == 2 and self.clips is not None and self.clips != len(self.lengths):
                        raise RecordError(
                            f"{self.path}: holds {len(self.lengths)} clips, the manifest says {self.clips}: "
                            f"{reprepare(Path(self.path).parent)}"
                        )
                    self._reader = reader
        return self._reader

    def read(self, position: int, clip: int) -> bytes:
        reader = self.reader()
        try:
            return reader.read([position])[0]
        except (RuntimeError, ValueError, OSError) as e:
            raise _damaged(self.path, f"record {position} (clip {clip})", e) from None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "schema": self.schema, "clips": self.clips}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["schema"], state["clips"])


class SplitReader(Sequence[bytes]):
    """Random access to a split's records, in stored order, over either schema.

    `reader[i]` is clip i's whole record (bytes, as `encode` made it). On schema-2
    shards `num_samples`, `header` and `windows` read only what they need, so a crop of a
    long track costs the chunks it overlaps. A shard that fails to read raises a one-line
    RecordError naming the file and record.
    """

    def __init__(
        self, paths: Sequence[str], schema: int = SCHEMA_VERSION, clips: Sequence[int | None] | None = None
    ):
        """`clips[s]`: shard s's clip count when known (None: count it from the file)."""
        counts = [None] * len(paths) if clips is None else list(clips)
        self._shards = [_Shard(p, schema, c) for p, c in zip(paths, counts, strict=True)]
        self.schema = schema
        self._ends = np.cumsum([s.clips for s in self._shards], dtype=np.int64)

    @property
    def chunked(self) -> bool:
        """Whether clips can be read in parts (schema 2)."""
        return self.schema == 2

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def _locate(self, index: int) -> tuple[_Shard, int]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} out of range for a split of {len(self)}")
        s = int(np.searchsorted(self._ends, index, side="right"))
        return self._shards[s], index - (int(self._ends[s - 1]) if s else 0)

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        shard, k = self._locate(index)
        if self.schema == 1:
            return shard.read(k, k)
        shard.reader()
        return b"".join(shard.read(j, k) for j in range(int(shard.first[k]), int(shard.first[k + 1])))

    def header(self, index: int) -> dict[str, Any]:
        """Clip `index`'s header (id, sample_rate, num_samples, labels, caption)."""
        shard, k = self._locate(index)
        if self.schema == 1:
            return decode_header(shard.read(k, k))[0]
        shard.reader()
        return parse_header(shard.read(int(shard.first[k]), k))[0]

    def num_samples(self, index: int) -> int:
        """Clip `index`'s length in samples (schema 2: from the index, no read)."""
        if self.schema == 1:
            return self.header(index)["num_samples"]
        shard, k = self._locate(index)
        shard.reader()
        return int(shard.lengths[k])

    def windows(
        self, index: int, starts: Sequence[int], length: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """int16 [len(starts), length]: the clip's samples from each start, zeros past its
        end, written into `out` when given.

        On schema 2 each chunk that a window overlaps is read once, and nothing else.
        """
        out = np.zeros((len(starts), length), np.int16) if out is None else out
        if self.schema == 1:
            audio = decode_audio(self[index])
            chunk, first, n = max(1, len(audio)), 0, len(audio)
        else:
            shard, k = self._locate(index)
            shard.reader()
            n, chunk, first = int(shard.lengths[k]), shard.chunk, int(shard.first[k]) + 1
        chunks: dict[int, np.ndarray] = {}
        for v, s in enumerate(starts):
            stop = min(s + length, n)
            out[v, max(0, stop - s) :] = 0
            for j in range(s // chunk, -(-stop // chunk) if stop > s else 0):
                if j not in chunks:
                    chunks[j] = audio if self.schema == 1 else np.frombuffer(shard.read(first + j, k), "<i2")
                lo, hi = max(s, j * chunk), min(stop, (j + 1) * chunk)
                out[v, lo - s : hi - s] = chunks[j][lo - j * chunk : hi - j * chunk]
        return out
