"""Where a dataset lives: a jaxmusic-prepared folder, or `tfds:PATH` (see tfds_io.py).

The one place that resolves `data.dir`, so training, subsets and `embed` read either
kind through the same two calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain

from jaxmusic.data import records, tfds_io


def read_manifest(data_dir: str) -> dict[str, Any]:
    """The dataset's manifest (a TFDS dataset's is derived from its DatasetInfo)."""
    if data_dir.startswith(tfds_io.PREFIX):
        return tfds_io.tfds_manifest(data_dir.removeprefix(tfds_io.PREFIX))
    return records.read_manifest(data_dir)


def open_split(data_dir: str, split: str) -> Sequence[bytes]:
    """Random access to a split's records (jaxmusic schema), in stored order."""
    if data_dir.startswith(tfds_io.PREFIX):
        return tfds_io.TfdsSplit(data_dir.removeprefix(tfds_io.PREFIX), split)
    return grain.sources.ArrayRecordDataSource(records.split_paths(data_dir, split))
