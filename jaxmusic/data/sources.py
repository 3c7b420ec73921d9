"""Where a dataset lives: a jaxmusic-prepared folder, or `tfds:PATH` (see tfds_io.py).

The one place that resolves `data.dir` and opens splits, so training, subsets and
`embed` read either kind through the same two calls, and a damaged prepared dataset is
refused here, before anything compiles: every shard the manifest lists must exist, with
the byte size and clip count the manifest records (a stat per shard, no reads), and the
split's clips must add up. Damage inside a shard of the right size is only seen when
read; `records.SplitReader` then names the file and record.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxmusic.data import records, tfds_io


def read_manifest(data_dir: str) -> dict[str, Any]:
    """The dataset's manifest (a TFDS dataset's is derived from its DatasetInfo)."""
    if data_dir.startswith(tfds_io.PREFIX):
        return tfds_io.tfds_manifest(data_dir.removeprefix(tfds_io.PREFIX))
    return records.read_manifest(data_dir)


def open_split(data_dir: str, split: str) -> Sequence[bytes]:
    """Random access to a split's records (jaxmusic schema), in stored order; a
    prepared folder's shards are checked against its manifest first."""
    if data_dir.startswith(tfds_io.PREFIX):
        return tfds_io.TfdsSplit(data_dir.removeprefix(tfds_io.PREFIX), split)
    manifest = records.read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise records.RecordError(f"split '{split}' not in {data_dir} (has: {', '.join(manifest['splits'])})")
    entry = manifest["splits"][split]
    sizes = entry.get("shard_sizes", {})
    paths, clips = [], []
    for name in entry["shards"]:
        path = Path(data_dir) / name
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise records.RecordError(
                f"{path}: listed in the manifest but missing: {records.reprepare(data_dir)}"
            ) from None
        expected = sizes.get(name)
        if expected is not None and size != expected["bytes"]:
            state = "truncated" if size < expected["bytes"] else "longer than written"
            raise records.RecordError(
                f"{path}: {state} ({size} bytes, the manifest says {expected['bytes']}): "
                f"{records.reprepare(data_dir)}"
            )
        paths.append(str(path))
        clips.append(None if expected is None else expected["clips"])
    source = records.SplitReader(paths, manifest["schema_version"], clips)
    if len(source) != entry["clips"]:
        raise records.RecordError(
            f"split '{split}' of {data_dir} holds {len(source)} clips, the manifest says {entry['clips']}: "
            f"{records.reprepare(data_dir)}"
        )
    return source
