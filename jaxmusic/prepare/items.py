"""`prepare_items`: any list of `Item`s (an adapter's, a folder's, mirdata's) as a dataset:
train/valid/test shards, `manifest.json` and `rejected.jsonl`, in the record schema of
`jaxmusic.data.records`.

Determinism and resuming: every item's split and shard are fixed before anything is
decoded (items sorted by split then clip_id, cut into runs of `clips_per_shard`), and
a record depends only on its file and the arguments, never on worker count or timing.
Shards are written one at a time and atomically; `OUT/.prepare/SHARD.json` records each
one's outcome (clips, samples, rejections) just before it is renamed into place, so a
shard file on disk is finished. A re-run with the same arguments keeps those and writes
the rest, ending with the bytes of an uninterrupted run. A file that cannot be used is
left out of its shard (a shard may even be empty) and listed in `rejected.jsonl` with
its reason; nothing a file holds stops the run. The manifest is written last.

A full disk stops the run as a kill would (finished shards kept, no partial file left),
with one line saying to free space and re-run; decoding workers die with the process
that started them, however it ends.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import hashlib
import json
import math
import multiprocessing
import numbers
import os
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from jaxmusic.data import records
from jaxmusic.prepare import audio_io, shards
from jaxmusic.prepare.manifest import split_entry, write_manifest
from jaxmusic.prepare.shards import PrepareError
from jaxmusic.prepare.splits import DEFAULT_FRACTIONS, SPLITS, assign_split, check_fractions

KINDS = ("single", "multi", "regression")
REJECTED = "rejected.jsonl"
STATE_DIR = ".prepare"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclasses.dataclass(frozen=True)
class Item:
    """One audio file to prepare.

    `labels` maps each task to an index into the task's classes (single), a list of
    indices (multi) or a number (regression). An item lacking a label for some task of
    the dataset is rejected as "unlabelled": every record must carry every task for the
    probes. `split` None lets the seeded split choose; it hashes `group` (default: the
    clip id), so the clips of one group (a track's excerpts, an artist) share a split.
    """

    path: str
    clip_id: str
    labels: dict
    caption: str | None = None
    split: str | None = None
    group: str | None = None


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
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    clips_per_shard: int = 256,
    min_seconds: float = 0.5,
    max_seconds: float = 3600.0,
    progress: bool = True,
    source: dict | None = None,
    rejected: Sequence[dict] = (),
) -> dict:
    """Decode, validate and write items as train/valid/test shards + manifest.json +
    rejected.jsonl; returns the manifest.

    Deterministic in everything but `workers` and `progress` (which change nothing
    written). `workers` > 1 decodes in that many spawned processes: call it from a
    notebook, a module, or a script under `if __name__ == "__main__":`. A complete dataset in
    `out` made with the same arguments is returned as it is; one made otherwise, or an
    unfinished one made otherwise, is refused (FileExistsError). `rejected` lists files
    the caller left out itself ({"path", "reason", "detail"}), reported with the rest.
    A run that keeps no clip at all is an error (PrepareError): rejected.jsonl is
    written, no manifest and no shards.
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
    if rejected:  # only then: datasets prepared before this argument keep their fingerprint
        params["rejected"] = sorted(json.dumps(r, sort_keys=True) for r in rejected)
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

    kept, screened = _screen(items, tasks)
    rejected = [*map(dict, rejected), *screened]
    if not kept:
        _nothing_kept(out, state, [], rejected)
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
        splits[split] = split_entry(
            out, [s.name for s in split_shards], [o["records"] for o in done],
            sum(o["samples"] for o in done), sample_rate,
        )  # fmt: skip
        rejected += [r for o in done for r in o["rejected"]]
    if not any(entry["clips"] for entry in splits.values()):
        _nothing_kept(out, state, [s.name for split_shards in plan.values() for s in split_shards], rejected)
    rejected.sort(key=lambda r: (r["path"], r["reason"]))
    with shards.writing(out / REJECTED):
        _write_lines_atomic(out / REJECTED, rejected)
    manifest = write_manifest(
        out, name=name, sample_rate=sample_rate, splits=splits, tasks=tasks, source=source,
        started=start, rejected=len(rejected), fingerprint=fingerprint,
    )  # fmt: skip
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
    try:
        check_fractions(fractions)
    except ValueError as e:
        raise PrepareError(str(e)) from None
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


def _screen(items: Sequence[Item], tasks: dict) -> tuple[list[Item], list[dict]]:
    """The items worth decoding, and a rejection for each of the others, with the most
    specific reason found without decoding.

    One file reached under two clip ids (a symbolic or hard link: the same device and
    inode once links are followed) is one clip: among the items holding every label,
    the first by clip id is kept and the others are rejected as "duplicate_file" naming
    it (items that each carry a caption may share a file: one item per caption). An
    item lacking a label is rejected as "not_a_file", "empty" or
    "unsupported_format" when it is that (checked from its name and first bytes), else
    as "duplicate_file" when it is the same file as a kept one, else as "unlabelled".
    """
    kept: list[Item] = []
    rejected: list[dict] = []
    unlabelled: list[tuple[Item, list[str]]] = []
    first: dict[tuple[int, int], Item] = {}
    for item in sorted(items, key=lambda item: item.clip_id):
        missing = [task for task in tasks if task not in item.labels]
        if missing:
            unlabelled.append((item, missing))
            continue
        key = _file_key(item.path)
        # One item per caption is how a multi-caption dataset (Song Describer) is written:
        # those share their file on purpose (and their split, by the adapter's grouping).
        if key is not None and key in first and not (item.caption and first[key].caption):
            rejected.append(_rejection(item.path, "duplicate_file", f"the same file as {first[key].clip_id}"))
            continue
        if key is not None:
            first[key] = item
        kept.append(item)
    for item, missing in unlabelled:
        reason, detail = _cheap_reason(item.path) or ("unlabelled", f"no label for {', '.join(missing)}")
        if reason == "unlabelled" and (key := _file_key(item.path)) in first:
            reason, detail = "duplicate_file", f"the same file as {first[key].clip_id}"
        rejected.append(_rejection(item.path, reason, detail))
    return kept, rejected


def _file_key(path: str) -> tuple[int, int] | None:
    """(device, inode) of a regular file, links followed; None for anything else."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _cheap_reason(path: str) -> tuple[str, str] | None:
    """Why a file cannot be decoded, when its metadata, name or first bytes tell."""
    p = Path(path)
    try:
        audio_io._check_file(p)
    except audio_io.AudioError as e:
        return e.reason, str(e).removeprefix(f"{path}: ")
    if not p.exists():
        return None
    head = b""
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        pass
    if p.suffix.lower() in audio_io.UNSUPPORTED_EXTENSIONS or audio_io._starts_with(
        head, audio_io._UNSUPPORTED_MAGIC
    ):
        return "unsupported_format", "a format libsndfile cannot decode (e.g. M4A/AAC, WMA)"
    return None


def _nothing_kept(out: Path, state: Path, shard_names: list[str], rejected: list[dict]) -> None:
    """Stop: no file became a clip. rejected.jsonl says why; no manifest, no shards."""
    rejected = sorted(rejected, key=lambda r: (r["path"], r["reason"]))
    with shards.writing(out / REJECTED):
        out.mkdir(parents=True, exist_ok=True)
        _write_lines_atomic(out / REJECTED, rejected)
    for name in shard_names:
        (out / name).unlink(missing_ok=True)
        (out / f"{name}.partial").unlink(missing_ok=True)
    shutil.rmtree(state, ignore_errors=True)
    reasons = collections.Counter(r["reason"] for r in rejected)
    summary = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
    raise PrepareError(
        f"nothing to prepare: all {len(rejected)} files were rejected ({summary or 'no files given'}); "
        f"see {out / REJECTED}"
    )


def _check_unique(items: Sequence[Item]) -> None:
    counts = collections.Counter(item.clip_id for item in items)
    twice = [clip_id for clip_id, n in counts.items() if n > 1]
    if twice:
        raise PrepareError(f"clip ids must be unique; repeated: {', '.join(sorted(twice)[:5])}")


def _fingerprint(params: dict, items: Sequence[Item]) -> str:
    payload = {**params, "items": [[i.path, i.clip_id, i.labels, i.caption, i.split, i.group] for i in items]}
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


def _plan(
    items: list[Item], seed: int, fractions: Sequence[float], per_shard: int
) -> dict[str, list[_Shard]]:
    """Every item's shard, decided before anything is decoded."""
    by_split: dict[str, list[Item]] = {split: [] for split in SPLITS}
    for item in items:
        by_split[item.split or assign_split(item.group or item.clip_id, seed, fractions)].append(item)
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
