"""One path API for workdirs and data on local disks and object stores.

`etils.epath` reads and writes `gs://` (and other fsspec/TensorFlow file systems) as
it does local files; Orbax takes its paths directly. Local paths are made absolute
(so a run's messages name where things are); remote ones are left as they are,
since `pathlib` would turn `gs://b/x` into `gs:/b/x`.
"""

from __future__ import annotations

import os

from etils import epath

REMOTE_PREFIXES = ("gs://", "s3://", "hf://", "az://", "abfs://", "memory://")


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` names an object store rather than the local file system."""
    return os.fspath(path).startswith(REMOTE_PREFIXES)


def as_path(path: str | os.PathLike) -> epath.Path:
    """`path` as an `epath.Path`: absolute when local, untouched when remote."""
    return epath.Path(path) if is_remote(path) else epath.Path(os.path.abspath(os.fspath(path)))


def append_text(path: epath.Path, text: str) -> None:
    """Append to a text file; object stores cannot append, so there the file is rewritten."""
    if is_remote(path):
        old = path.read_text() if path.exists() else ""
        path.write_text(old + text)
    else:
        with open(path, "a") as f:
            f.write(text)
