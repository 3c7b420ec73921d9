"""`jaxmusic prepare folder`: walk a folder for audio, read its labels and captions files,
and hand the files to `prepare_items` as Items (clip ids are paths relative to the folder,
in Unicode NFC).

Duplicates: one file reached twice (a symbolic or hard link) is one clip, for every
source, in `prepare_items` ("duplicate_file"). Copies (different files holding the same
bytes) are found here, for folders only: a user's own collection is where copies appear,
and finding them reads every file of a common size twice, a cost the curated datasets of
the adapters (whose published splits are kept as published) should not pay.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxmusic.prepare import audio_io
from jaxmusic.prepare.items import Item, prepare_items
from jaxmusic.prepare.labels import TaskSpec, normalise_name, parse_task, read_captions, read_labels
from jaxmusic.prepare.shards import PrepareError
from jaxmusic.prepare.splits import DEFAULT_FRACTIONS, SPLITS

_HASH_BLOCK = 1 << 20


def prepare_folder(
    in_dir: str | Path,
    out: str | Path,
    *,
    labels_file: str | None = None,
    captions_file: str | None = None,
    path_column: str | None = None,
    tasks: Sequence[str | TaskSpec] | None = None,
    sample_rate: int = 22050,
    workers: int = 1,
    seed: int = 0,
    progress: bool = True,
    **kw: Any,
) -> dict:
    """Walk in_dir for audio (SUPPORTED_EXTENSIONS, case-insensitive, sorted), read
    labels/captions, call prepare_items.

    Clip ids are paths relative to in_dir (NFC). With a labels file, a file it does not
    list (or lists without a value for a single-label or regression task) is rejected as
    "unlabelled" (or a more specific reason, e.g. "unsupported_format"). `path_column` and
    `tasks` (`COLUMN[:KIND][=NAME]` each) go to `read_labels`. `kw` goes to
    `prepare_items` (name, split_fractions, clips_per_shard, min_seconds, max_seconds).

    Copies (see `content_groups`) stay together: with no split given, the copies share
    one seeded split group; when the labels give them different splits, the copies in the
    first of train, valid, test among those are kept (copies with no split join them) and
    the others are rejected as "duplicate_content", so no audio is both trained and tested
    on. The manifest's source counts the copies ("duplicate_content").

    A folder with no audio, or a labels file naming none of its files, is a PrepareError,
    as is (in `prepare_items`) a run that keeps nothing.
    """
    root = Path(in_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{in_dir}: no such folder")
    if tasks and not labels_file:
        raise PrepareError("--task chooses columns of a labels file: give one with --labels")
    files = find_audio(root)
    if not files:
        raise PrepareError(
            f"{in_dir}: no audio files found (looked recursively for {', '.join(audio_io.SUPPORTED_EXTENSIONS)})"
        )
    ids = {rel: normalise_name(rel) for rel in files}
    specs = [t if isinstance(t, TaskSpec) else parse_task(t) for t in tasks or []]
    table = read_labels(labels_file, root, path_column=path_column, tasks=specs) if labels_file else None
    labels = table.labels if table else {}
    splits = table.splits if table else {}
    captions = read_captions(captions_file, root) if captions_file else {}
    listed = set(ids.values())
    if table is not None and not listed & set(labels):
        raise PrepareError(_no_match(labels_file, sorted(labels), sorted(listed)))
    items = [
        Item(
            str(root / rel), ids[rel], labels.get(ids[rel], {}), captions.get(ids[rel]), splits.get(ids[rel])
        )
        for rel in files
    ]
    groups = content_groups([item.path for item in items])
    items, rejected, copies = _keep_copies_together(items, groups)
    fractions = tuple(kw.get("split_fractions", DEFAULT_FRACTIONS))
    split, note = _split_description(table, labels_file, items, fractions, seed)
    source = {
        "kind": "folder",
        "params": {
            "in": str(root),
            "labels": str(Path(labels_file).resolve()) if labels_file else None,
            "captions": str(Path(captions_file).resolve()) if captions_file else None,
            "sample_rate": sample_rate,
            "seed": seed,
        },
        "split": split,
        "split_note": note,
        "unmatched_labels": len(set(labels) - listed),
        "unmatched_captions": len(set(captions) - listed),
        "duplicate_content": copies,
    }
    if table is not None:
        source["task_kinds"] = table.notes
        ranges = {
            task: [min(v), max(v)]
            for task, spec in table.tasks.items()
            if spec["kind"] == "regression"
            and (v := [labels[i.clip_id][task] for i in items if task in labels.get(i.clip_id, {})])
        }
        if ranges:
            source["label_ranges"] = ranges
    return prepare_items(
        items,
        out,
        name=kw.pop("name", root.name),
        tasks=table.tasks if table else {},
        sample_rate=sample_rate,
        workers=workers,
        seed=seed,
        progress=progress,
        source=source,
        rejected=rejected,
        **kw,
    )


def _no_match(labels_file: str, named: list[str], files: list[str]) -> str:
    hint = ""
    if named and files:
        a, f = named[0], files[0]
        if posixpath.basename(a) in {posixpath.basename(x) for x in files}:
            hint = "; the names match but not the folders: paths must be relative to --in"
        hint = f"; its paths look like {a!r}, the files like {f!r}{hint}"
    return f"none of the {len(files)} audio files matched the labels file {labels_file}{hint}"


def _split_description(table, labels_file, items: list[Item], fractions, seed: int) -> tuple[str, str]:
    seeded = "/".join(f"{100 * f:g}" for f in fractions)
    if table is not None and table.has_split_column:
        given = [i for i in items if i.split is not None]
        if len(given) == len([i for i in items if i.clip_id in table.labels]):
            return "labels", f"the split column of {Path(labels_file).name}"
        return "labels+seeded", (
            f"the split column of {Path(labels_file).name}; files without one seeded {seeded} (seed {seed})"
        )
    return "seeded", f"seeded {seeded} (seed {seed})"


def content_groups(paths: Sequence[str]) -> dict[str, str]:
    """{path: the first (sorted) path holding the same bytes} for every path that holds
    the same bytes as another *file* (links to one file are left to prepare_items).
    Files are compared by size first, then by SHA-256; empty files are left out."""
    by_inode: dict[tuple[int, int], str] = {}
    sizes: dict[int, list[str]] = {}
    for path in sorted(paths):
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not os.path.isfile(path) or st.st_size == 0 or (st.st_dev, st.st_ino) in by_inode:
            continue
        by_inode[(st.st_dev, st.st_ino)] = path
        sizes.setdefault(st.st_size, []).append(path)
    groups: dict[str, str] = {}
    for same_size in sizes.values():
        if len(same_size) < 2:
            continue
        by_digest: dict[str, list[str]] = {}
        for path in same_size:
            try:
                by_digest.setdefault(_sha256(path), []).append(path)
            except OSError:
                continue
        for copies in by_digest.values():
            if len(copies) > 1:
                for path in copies:
                    groups[path] = copies[0]
    return groups


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _keep_copies_together(items: list[Item], groups: dict[str, str]) -> tuple[list[Item], list[dict], int]:
    """Items with each set of copies in one split, the copies rejected to make it so, and
    the number of copies (files beyond the first of each set)."""
    members: dict[str, list[Item]] = {}
    for item in items:
        if item.path in groups:
            members.setdefault(groups[item.path], []).append(item)
    replaced: dict[str, Item | None] = {}
    rejected: list[dict] = []
    for copies in members.values():
        copies.sort(key=lambda item: item.clip_id)
        given = {item.split for item in copies if item.split is not None}
        if not given:
            for item in copies:
                replaced[item.clip_id] = Item(
                    item.path, item.clip_id, item.labels, item.caption, None, copies[0].clip_id
                )
            continue
        split = next(s for s in SPLITS if s in given)
        kept = next(item for item in copies if item.split == split)
        for item in copies:
            if item.split in (None, split):
                replaced[item.clip_id] = Item(
                    item.path, item.clip_id, item.labels, item.caption, split, item.group
                )
            else:
                replaced[item.clip_id] = None
                rejected.append(
                    {
                        "path": item.path,
                        "reason": "duplicate_content",
                        "detail": f"the same bytes as {kept.clip_id}, in {split}; this copy's split is {item.split}",
                    }
                )
    out = [replaced.get(item.clip_id, item) for item in items]
    copies = sum(len(c) - 1 for c in members.values())
    return [item for item in out if item is not None], rejected, copies


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
