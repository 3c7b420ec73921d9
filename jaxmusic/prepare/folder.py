"""`jaxmusic prepare folder`: walk a folder for audio, read its labels and captions files,
and hand the files to `prepare_items` as Items (clip ids are paths relative to the folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jaxmusic.prepare import audio_io
from jaxmusic.prepare.items import Item, prepare_items
from jaxmusic.prepare.labels import read_captions, read_labels


def prepare_folder(
    in_dir: str | Path,
    out: str | Path,
    *,
    labels_file: str | None = None,
    captions_file: str | None = None,
    sample_rate: int = 22050,
    workers: int = 1,
    seed: int = 0,
    progress: bool = True,
    **kw: Any,
) -> dict:
    """Walk in_dir for audio (SUPPORTED_EXTENSIONS, case-insensitive, sorted), read
    labels/captions, call prepare_items.

    Clip ids are paths relative to in_dir. With a labels file, a file it does not list
    (or lists without a value for a single-label or regression task) is rejected as
    "unlabelled". `kw` goes to `prepare_items` (name, split_fractions, clips_per_shard,
    min_seconds, max_seconds).
    """
    root = Path(in_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{in_dir}: no such folder")
    files = find_audio(root)
    tasks: dict = {}
    labels: dict[str, dict] = {}
    splits: dict[str, str | None] = {}
    if labels_file:
        tasks, labels, splits = read_labels(labels_file, root)
    captions = read_captions(captions_file, root) if captions_file else {}
    items = [
        Item(str(root / rel), rel, labels.get(rel, {}), captions.get(rel), splits.get(rel)) for rel in files
    ]
    listed = set(files)
    source = {
        "kind": "folder",
        "params": {
            "in": str(root),
            "labels": str(Path(labels_file).resolve()) if labels_file else None,
            "captions": str(Path(captions_file).resolve()) if captions_file else None,
            "sample_rate": sample_rate,
            "seed": seed,
        },
        "unmatched_labels": len(set(labels) - listed),
        "unmatched_captions": len(set(captions) - listed),
    }
    return prepare_items(
        items,
        out,
        name=kw.pop("name", root.name),
        tasks=tasks,
        sample_rate=sample_rate,
        workers=workers,
        seed=seed,
        progress=progress,
        source=source,
        **kw,
    )


def find_audio(root: Path) -> list[str]:
    """Paths (relative, POSIX) under `root` named like audio, sorted; hidden entries
    (such as macOS's `._x.wav` resource forks) are skipped. Names of formats that cannot
    be decoded here are included, so that they are reported rather than ignored."""
    extensions = set(audio_io.SUPPORTED_EXTENSIONS) | set(audio_io.UNSUPPORTED_EXTENSIONS)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        # A directory named like audio is listed too: it is reported, not silently skipped.
        for entry in dirs + files:
            if not entry.startswith(".") and os.path.splitext(entry)[1].lower() in extensions:
                found.append(Path(folder, entry).relative_to(root).as_posix())
    return sorted(found)
