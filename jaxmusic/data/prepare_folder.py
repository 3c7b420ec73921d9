"""`jaxmusic prepare folder`: audio files (plus optional labels and captions) as a dataset.

Two layers:
- `prepare_items` turns any list of `Item`s (a dataset adapter's, or a folder's) into
  train/valid/test shards, `manifest.json` and `rejected.jsonl`, in the same record
  schema and manifest layout as `prepare_synth`.
- `prepare_folder` walks a folder and reads a labels file and a captions file into Items.

Determinism and resuming: every item's split and shard are fixed before anything is
decoded (items sorted by split then clip_id, cut into runs of `clips_per_shard`), and
a record depends only on its file and the arguments, never on worker count or timing.
Shards are written one at a time and atomically; `OUT/.prepare/SHARD.json` records each
one's outcome (clips, samples, rejections) just before it is renamed into place, so a
shard file on disk is finished. A re-run with the same arguments keeps those and writes
the rest, ending with the bytes of an uninterrupted run. A file that cannot be used is
left out of its shard (a shard may even be empty) and listed in `rejected.jsonl`;
nothing a file holds stops the run. The manifest is written last.

A full disk stops the run as a kill would (finished shards kept, no partial file left),
with one line saying to free space and re-run; decoding workers die with the process
that started them, however it ends.
"""

from __future__ import annotations

import collections
import csv
import ctypes
import dataclasses
import hashlib
import json
import math
import multiprocessing
import numbers
import os
import posixpath
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from jaxmusic.data import audio_io, records, shards
from jaxmusic.data.shards import PrepareError

SPLITS = ("train", "valid", "test")
KINDS = ("single", "multi", "regression")
REJECTED = "rejected.jsonl"
STATE_DIR = ".prepare"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}


@dataclasses.dataclass(frozen=True)
class Item:
    """One audio file to prepare.

    `labels` maps each task to an index into the task's classes (single), a list of
    indices (multi) or a number (regression). An item lacking a label for some task of
    the dataset is rejected as "unlabelled": every record must carry every task for the
    probes. `split` None lets the seeded split choose.
    """

    path: str
    clip_id: str
    labels: dict
    caption: str | None = None
    split: str | None = None


class _Shard(NamedTuple):
    name: str
    items: list[Item]


def prepare_items(
    items: Sequence[Item],
    out: str | Path,
    *,
    name: str,
    tasks: dict,
    sample_rate: int,
    workers: int = 1,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    clips_per_shard: int = 256,
    min_seconds: float = 0.5,
    max_seconds: float = 3600.0,
    progress: bool = True,
    source: dict | None = None,
) -> dict:
    """Decode, validate and write items as train/valid/test shards + manifest.json +
    rejected.jsonl; returns the manifest.

    Deterministic in everything but `workers` and `progress` (which change nothing
    written). `workers` > 1 decodes in that many spawned processes: call it from a
    notebook, a module, or a script under `if __name__ == "__main__":`. A complete dataset in
    `out` made with the same arguments is returned as it is; one made otherwise, or an
    unfinished one made otherwise, is refused (FileExistsError).
    """
    out = Path(out)
    _check_arguments(tasks, sample_rate, split_fractions, clips_per_shard)
    items = [_canonical(item, tasks) for item in items]
    _check_unique(items)
    source = source if source is not None else {"kind": "items"}
    params = {
        "name": name,
        "tasks": tasks,
        "sample_rate": sample_rate,
        "seed": seed,
        "split_fractions": list(split_fractions),
        "clips_per_shard": clips_per_shard,
        "min_seconds": min_seconds,
        "max_seconds": max_seconds,
        "source": source,
    }
    fingerprint = _fingerprint(params, items)
    if (out / records.MANIFEST).exists():
        manifest = records.read_manifest(out)
        if manifest.get("fingerprint") == fingerprint:
            return manifest
        raise FileExistsError(
            f"{out} already holds a different dataset ({manifest.get('name')!r}): choose another --out"
        )
    state = out / STATE_DIR
    _claim(state, fingerprint, out)
    start = time.time()

    rejected, kept = [], []
    for item in items:
        missing = [task for task in tasks if task not in item.labels]
        if missing:
            rejected.append(_rejection(item.path, "unlabelled", f"no label for {', '.join(missing)}"))
        else:
            kept.append(item)
    plan = _plan(kept, seed, split_fractions, clips_per_shard)
    outcomes = {s.name: _finished(out, state, s.name) for split_shards in plan.values() for s in split_shards}
    todo = [s for split_shards in plan.values() for s in split_shards if outcomes[s.name] is None]

    bar = tqdm(total=len(kept), desc=f"prepare {name}", unit="file", disable=not progress)
    bar.update(len(kept) - sum(len(s.items) for s in todo))
    jobs = (
        (item.path, item.clip_id, item.labels, item.caption, sample_rate, min_seconds, max_seconds)
        for s in todo
        for item in s.items
    )
    results = _in_order(jobs, workers)
    counts = collections.Counter(rejected=len(rejected))
    try:
        for s in todo:
            outcomes[s.name] = _write_shard(out, state, s, results, bar, counts)
    finally:
        results.close()
        bar.close()

    splits = {}
    for split, split_shards in plan.items():
        done = [outcomes[s.name] for s in split_shards]
        names = [s.name for s in split_shards]
        splits[split] = {
            "shards": names,
            "shard_sizes": shards.shard_sizes(out, names, [o["records"] for o in done]),
            "clips": sum(o["records"] for o in done),
            "seconds": sum(o["samples"] for o in done) / sample_rate,
        }
        rejected += [r for o in done for r in o["rejected"]]
    rejected.sort(key=lambda r: (r["path"], r["reason"]))
    with shards.writing(out / REJECTED):
        _write_lines_atomic(out / REJECTED, rejected)
    manifest = {
        "schema_version": records.SCHEMA_VERSION,
        "name": name,
        "sample_rate": sample_rate,
        "splits": splits,
        "tasks": tasks,
        "source": source,
        "rejected": len(rejected),
        "fingerprint": fingerprint,
        "prepare_seconds": round(time.time() - start, 2),
    }
    with shards.writing(out / records.MANIFEST):
        records.write_json_atomic(out / records.MANIFEST, manifest)
    # Housekeeping only: the manifest already marks the dataset complete.
    shutil.rmtree(state, ignore_errors=True)
    for split_shards in plan.values():
        for s in split_shards:
            (out / f"{s.name}.partial").unlink(missing_ok=True)
    return manifest


def _check_arguments(tasks: dict, sample_rate: int, fractions: Sequence[float], clips_per_shard: int) -> None:
    for task, spec in tasks.items():
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            raise PrepareError(f"task {task!r}: needs a kind, one of {', '.join(KINDS)}")
        if spec["kind"] != "regression" and not spec.get("classes"):
            raise PrepareError(f"task {task!r}: a {spec['kind']}-label task needs its list of classes")
    if sample_rate <= 0:
        raise PrepareError(f"sample rate must be positive, got {sample_rate}")
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0):
        raise PrepareError(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    if clips_per_shard < 1:
        raise PrepareError(f"clips per shard must be at least 1, got {clips_per_shard}")


def _canonical(item: Item, tasks: dict) -> Item:
    """The item with its labels checked and in one form (so equal inputs fingerprint equally).

    A wrong label is a bug in whoever built the item, so it stops the run before anything
    is written; a missing one (or a NaN number) only rejects the item.
    """
    if item.split is not None and item.split not in SPLITS:
        raise PrepareError(f"{item.clip_id}: split {item.split!r}, expected one of {', '.join(SPLITS)}")
    labels: dict[str, Any] = {}
    for task, value in item.labels.items():
        if task not in tasks:
            raise PrepareError(f"{item.clip_id}: label for unknown task {task!r}")
        spec = tasks[task]
        if spec["kind"] == "regression":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise PrepareError(f"{item.clip_id}: task {task!r} needs a number, got {value!r}")
            if math.isfinite(value):
                labels[task] = float(value)
            continue
        classes = len(spec["classes"])
        if spec["kind"] == "multi" and (isinstance(value, str | bytes) or not hasattr(value, "__iter__")):
            raise PrepareError(f"{item.clip_id}: task {task!r} needs a list of class indices, got {value!r}")
        indices = [value] if spec["kind"] == "single" else list(value)
        for i in indices:
            if isinstance(i, bool) or not hasattr(i, "__index__") or not 0 <= i < classes:
                raise PrepareError(
                    f"{item.clip_id}: task {task!r}: {i!r} is not a class index below {classes}"
                )
        labels[task] = int(value) if spec["kind"] == "single" else sorted({int(i) for i in indices})
    return dataclasses.replace(item, labels=labels)


def _check_unique(items: Sequence[Item]) -> None:
    counts = collections.Counter(item.clip_id for item in items)
    twice = [clip_id for clip_id, n in counts.items() if n > 1]
    if twice:
        raise PrepareError(f"clip ids must be unique; repeated: {', '.join(sorted(twice)[:5])}")


def _fingerprint(params: dict, items: Sequence[Item]) -> str:
    payload = {**params, "items": [[i.path, i.clip_id, i.labels, i.caption, i.split] for i in items]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _claim(state: Path, fingerprint: str, out: Path) -> None:
    """Mark `out` as being prepared with these arguments; refuse one begun with others."""
    plan_path = state / "plan.json"
    if plan_path.exists():
        if json.loads(plan_path.read_text()).get("fingerprint") != fingerprint:
            raise FileExistsError(
                f"{out} holds an unfinished dataset prepared with other arguments: "
                "delete it or choose another --out"
            )
    elif any(out.glob("*.array_record")):
        # Not ours (the plan is written before any shard): never mix two datasets' shards.
        raise FileExistsError(f"{out} holds shards but no manifest: delete it or choose another --out")
    with shards.writing(plan_path):
        state.mkdir(parents=True, exist_ok=True)
        records.write_json_atomic(plan_path, {"fingerprint": fingerprint})


def assign_split(clip_id: str, seed: int, fractions: Sequence[float]) -> str:
    """The seeded split of a clip: a hash of (seed, clip_id), so it does not depend on
    which other files there are or in what order they were listed."""
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def _plan(
    items: list[Item], seed: int, fractions: Sequence[float], per_shard: int
) -> dict[str, list[_Shard]]:
    """Every item's shard, decided before anything is decoded."""
    by_split: dict[str, list[Item]] = {split: [] for split in SPLITS}
    for item in items:
        by_split[item.split or assign_split(item.clip_id, seed, fractions)].append(item)
    plan = {}
    for split, members in by_split.items():
        members.sort(key=lambda item: item.clip_id)
        # An empty split still gets one (empty) shard, as shards.write_split does.
        count = max(1, -(-len(members) // per_shard))
        plan[split] = [
            _Shard(shards.shard_name(split, k, count), members[k * per_shard : (k + 1) * per_shard])
            for k in range(count)
        ]
    return plan


def _finished(out: Path, state: Path, name: str) -> dict | None:
    """A shard's recorded outcome if the shard is complete on disk, else None."""
    record = state / f"{name}.json"
    if not (record.exists() and (out / name).exists()):
        return None
    outcome = json.loads(record.read_text())
    return outcome if shards.count_records(out / name) == outcome["records"] else None


def _prepare_one(job: tuple) -> tuple:
    """Decode and encode one file (runs in a worker process): ("ok", record, samples) or
    ("rejected", reason, detail)."""
    path, clip_id, labels, caption, sample_rate, min_seconds, max_seconds = job
    try:
        audio = audio_io.load_audio(path, sample_rate, min_seconds=min_seconds, max_seconds=max_seconds)
    except audio_io.AudioError as e:
        return ("rejected", e.reason, str(e).removeprefix(f"{path}: "))
    except Exception as e:  # an unforeseen decoder failure must not stop the whole run
        return ("rejected", "decode_failed", f"{type(e).__name__}: {e}")
    return ("ok", records.encode(clip_id, audio, sample_rate, labels, caption), len(audio))


def _in_order(jobs: Iterator[tuple], workers: int) -> Iterator[tuple]:
    """`_prepare_one` over jobs, results in job order, at most a few jobs ahead."""
    if workers <= 1:
        for job in jobs:
            yield _prepare_one(job)
        return
    # spawn, not fork: forking a process whose threads (JAX's, say) may hold locks can
    # deadlock. Spawned workers re-import the caller's main module, which must therefore
    # be importable and guard its work with `if __name__ == "__main__":`.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=_die_with, initargs=(os.getpid(),)) as pool:
        pending: collections.deque = collections.deque()
        try:
            for job in jobs:
                pending.append(pool.submit(_prepare_one, job))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(cancel_futures=True)


def _die_with(parent: int) -> None:
    """Pool initializer: end this worker when `parent` ends, however it ends.

    A parent killed by SIGKILL runs no cleanup, and its workers would wait forever on
    the pool's pipes (they hold both ends). On Linux the kernel delivers SIGKILL when
    the parent dies (PR_SET_PDEATHSIG); elsewhere a thread polls the parent's pid.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _write_shard(
    out: Path, state: Path, shard: _Shard, results: Iterator[tuple], bar: tqdm, counts: collections.Counter
) -> dict:
    """Write one shard from the next results; returns its outcome.

    The outcome is recorded after the last record and before the shard is renamed into
    place, so a shard file that exists is finished and recorded, and is never redone.
    """
    rejected: list[dict] = []
    samples = 0
    outcome: dict = {}

    def accepted() -> Iterator[bytes]:
        nonlocal samples
        for item in shard.items:
            status, a, b = next(results)
            bar.update(1)
            if status == "ok":
                samples += b
                yield a
            else:
                rejected.append(_rejection(item.path, a, b))
                counts["rejected"] += 1
                bar.set_postfix(rejected=counts["rejected"], refresh=False)
        outcome.update(records=len(shard.items) - len(rejected), samples=samples, rejected=rejected)
        records.write_json_atomic(state / f"{shard.name}.json", outcome)

    shards.write_shard(out / shard.name, accepted())
    return outcome


def _rejection(path: str, reason: str, detail: str) -> dict:
    return {"path": path, "reason": reason, "detail": detail}


def _write_lines_atomic(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- a folder of audio, a labels file, a captions file ---------------------------------


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


def read_labels(path: str | Path, root: Path) -> tuple[dict, dict[str, dict], dict[str, str | None]]:
    """Read a labels file: (tasks, {relative path: encoded labels}, {relative path: split}).

    CSV with a header `path,<task columns>[,split]`, or JSON `{path: {task: value}}`.
    A task's kind is inferred from its values (numbers: regression; any value with ';'
    or a list: multi-label; otherwise single-label) unless the column is named
    `task:single`, `task:multi` or `task:regression`. Classes are sorted.
    """
    path = Path(path)
    rows = _read_json_labels(path) if path.suffix.lower() == ".json" else _read_csv_labels(path)
    rows = {_relative(p, root, path): row for p, row in rows.items()}
    columns = list(dict.fromkeys(c for row in rows.values() for c in row if c != "split"))
    tasks: dict = {}
    encoded: dict[str, dict] = {rel: {} for rel in rows}
    for column in columns:
        if all(_missing(row.get(column)) for row in rows.values()):
            raise PrepareError(f"{path}: column {column!r} has no values")
        task, _, kind = column.rpartition(":")
        if kind not in KINDS:
            task, kind = column, _infer_kind([row.get(column) for row in rows.values()])
        if task in tasks:
            raise PrepareError(f"{path}: task {task!r} appears twice")
        tasks[task], values = _encode_column(
            path, task, kind, {rel: row.get(column) for rel, row in rows.items()}
        )
        for rel, value in values.items():
            encoded[rel][task] = value
    splits = {rel: _split_name(path, rel, row.get("split")) for rel, row in rows.items()}
    return tasks, encoded, splits


def _read_csv_labels(path: Path) -> dict[str, dict]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise PrepareError(f"{path}: a labels CSV needs a header row with a 'path' column")
        rows: dict[str, dict] = {}
        for row in reader:
            if None in row:
                raise PrepareError(f"{path}:{reader.line_num}: more cells than header columns")
            key = row.pop("path") or ""
            if key in rows:
                raise PrepareError(f"{path}:{reader.line_num}: {key} is listed twice")
            rows[key] = {column: _csv_cell(cell) for column, cell in row.items()}
    return rows


def _csv_cell(cell: str | None) -> Any:
    """A CSV cell; one written as a JSON list (`["rock", "pop"]`) becomes a list."""
    cell = (cell or "").strip()
    if cell.startswith("["):
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            return cell
        return value if isinstance(value, list) else cell
    return cell


def _read_json_labels(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrepareError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PrepareError(f"{path}: expected a JSON object {{path: {{task: value}}}}")
    return data


def _relative(name: str, root: Path, labels_path: Path) -> str:
    """A labels-file path as the clip id it names (relative to the folder, POSIX)."""
    name = name.strip().replace("\\", "/")
    if not name:
        raise PrepareError(f"{labels_path}: a row has an empty path")
    if posixpath.isabs(name):
        try:
            return Path(name).resolve().relative_to(root).as_posix()
        except ValueError:
            return name
    return posixpath.normpath(name)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _infer_kind(values: list[Any]) -> str:
    present = [v for v in values if not _missing(v)]
    if any(isinstance(v, list) or (isinstance(v, str) and ";" in v) for v in present):
        return "multi"
    if present and all(_number(v) is not None for v in present):
        return "regression"
    return "single"


def _encode_column(path: Path, task: str, kind: str, values: dict[str, Any]) -> tuple[dict, dict[str, Any]]:
    """A task's manifest entry and each file's encoded value (missing values left out,
    except multi-label, where missing means no tags)."""
    if kind == "regression":
        encoded = {}
        for rel, value in values.items():
            if _missing(value):
                continue
            if (number := _number(value)) is None:
                raise PrepareError(f"{path}: task {task!r} of {rel}: {value!r} is not a number")
            encoded[rel] = number
        return {"kind": "regression"}, encoded
    if kind == "multi":
        tags = {rel: _tags(value) for rel, value in values.items()}
        classes = _sorted_classes({t for ts in tags.values() for t in ts})
        index = {c: i for i, c in enumerate(classes)}
        return {"kind": "multi", "classes": classes}, {
            rel: sorted(index[t] for t in set(ts)) for rel, ts in tags.items()
        }
    names = {rel: _class_name(value) for rel, value in values.items() if not _missing(value)}
    classes = _sorted_classes(set(names.values()))
    index = {c: i for i, c in enumerate(classes)}
    return {"kind": "single", "classes": classes}, {rel: index[c] for rel, c in names.items()}


def _class_name(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value).strip()


def _tags(value: Any) -> list[str]:
    if _missing(value):
        return []
    parts = value if isinstance(value, list) else str(value).split(";")
    return [t for t in (str(p).strip() for p in parts) if t]


def _sorted_classes(names: set[str]) -> list[str]:
    """Sorted classes; numerically when every name is a number (2 before 10)."""
    if names and all(_number(n) is not None for n in names):
        return sorted(names, key=lambda n: (float(n), n))
    return sorted(names)


def _split_name(path: Path, rel: str, value: Any) -> str | None:
    if _missing(value):
        return None
    split = _SPLIT_NAMES.get(str(value).strip().lower())
    if split is None:
        raise PrepareError(f"{path}: split {value!r} of {rel}: use train, valid or test")
    return split


def read_captions(path: str | Path, root: Path) -> dict[str, str]:
    """Read a JSON-lines captions file, one `{"path": ..., "caption": ...}` per line."""
    path = Path(path)
    captions: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise PrepareError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not (
                isinstance(row, dict)
                and isinstance(row.get("path"), str)
                and isinstance(row.get("caption"), str)
            ):
                raise PrepareError(f'{path}:{n}: expected {{"path": "...", "caption": "..."}}')
            rel = _relative(row["path"], root, path)
            if rel in captions:
                raise PrepareError(f"{path}:{n}: {rel} has a caption already")
            captions[rel] = row["caption"]
    return captions
