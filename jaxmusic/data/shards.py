"""Writing records into ArrayRecord shards, each one all-or-nothing.

A shard is written under a temporary name and renamed when closed, so a killed writer
leaves no file a reader would accept, and a re-run skips the shards that are done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

# group_size:1 gives true random access per record, which Grain's global shuffle needs.
WRITER_OPTIONS = "group_size:1"


def shard_name(split: str, index: int, count: int) -> str:
    """The file name of shard `index` of `count` in a split."""
    return f"{split}-{index:05d}-of-{count:05d}.array_record"


def write_shard(path: Path, records: Iterable[bytes]) -> int:
    """Write records to `path` atomically; returns how many were written."""
    tmp = path.with_name(path.name + ".partial")
    writer = ArrayRecordWriter(str(tmp), WRITER_OPTIONS)
    n = 0
    try:
        for record in records:
            writer.write(record)
            n += 1
    finally:
        writer.close()
    os.replace(tmp, path)
    return n


def count_records(path: str | os.PathLike) -> int:
    """Number of records in one shard."""
    reader = ArrayRecordReader(str(path))
    try:
        return reader.num_records()
    finally:
        reader.close()


def write_split(
    out_dir: Path,
    split: str,
    num_items: int,
    num_shards: int,
    make_record: Callable[[int], bytes],
    on_item: Callable[[], None] = lambda: None,
) -> list[str]:
    """Write items 0..num_items-1 of a split into contiguous shards.

    Shards already complete on disk are kept as they are (resume); `make_record(i)`
    must be deterministic for that to give the same dataset as an uninterrupted run.
    """
    num_shards = max(1, min(num_shards, num_items))
    names = []
    for s in range(num_shards):
        lo, hi = s * num_items // num_shards, (s + 1) * num_items // num_shards
        name = shard_name(split, s, num_shards)
        path = out_dir / name
        if not (path.exists() and count_records(path) == hi - lo):
            write_shard(path, _each(make_record, range(lo, hi), on_item))
        else:
            for _ in range(lo, hi):
                on_item()
        names.append(name)
    return names


def _each(make_record: Callable[[int], bytes], indices: range, on_item: Callable[[], None]):
    for i in indices:
        yield make_record(i)
        on_item()
