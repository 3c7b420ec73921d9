"""Any dataset mirdata (https://mirdata.readthedocs.io) has a loader for, read through
mirdata 1.0: `jaxmusic prepare mirdata NAME --data-home DIR --out OUT`.

Needs `pip install 'jaxmusic[mirdata]'`. Nothing is downloaded: mirdata's `download()` is
never called. mirdata 1.0 ships no dataset index in its wheel; it fetches each index from
Zenodo on `download()`. The index is looked for, in order, at `--index FILE`,
`DATA_HOME/<index file name>` and mirdata's own cache (where an earlier `download()` put
it); when none exists the run stops with one line naming the file and its URL.

`--data-home` is mirdata's data_home (the folder its index paths are relative to, e.g.
~/mir_datasets/gtzan_genre), or its parent holding NAME/. Tracks whose audio file (index
key `audio`, else `audio_mix` / `audio_mono` / the first `audio*` key, or `--audio-key`) is
absent are skipped and counted. The files of the tracks present (and the index's
metadata files, and the index itself) are checked with mirdata's own `validate` (exists,
md5): mismatches are reported in one warning line and recorded in the manifest's source
(`checksums`), and the tracks are kept (re-encoded or re-packaged copies never match);
`--strict` refuses them instead, `--skip-checksums` checks only that files exist.

Tasks come from the track attributes (properties included), by the value each holds:

| attribute value                               | task kind   | label                             |
|-----------------------------------------------|-------------|-----------------------------------|
| str (e.g. genre, instrument, key as a string) | single      | the stripped string               |
| KeyData holding one distinct key              | single      | that key (modulating tracks: none)|
| int or float, not bool (e.g. tempo)           | regression  | the number                        |
| TempoData, or a list/tuple of one number      | regression  | the one tempo (several: none)     |
| list/tuple/set of str (e.g. instrument, tags) | multi       | the strings                       |

Classes are the sorted distinct values over the tracks present. Skipped, never tasks:
time-aligned annotations (BeatData, ChordData, SectionData, F0Data, MultiF0Data,
NoteData, EventData, LyricData, MultiAnnotator, MIDI) and bool, dict, array and None
values; attributes named like paths, ids or free text (`*_path`, `*_id`, `*_url`,
`*_uri`, `*mbid*`, title, artist, album, composer, duration, year, ... see `_NOT_TASKS`),
`audio*`, and the split attribute. Without `--task`, every mapped attribute that labels
all tracks present with at least two distinct values is a task; `--task ATTR` (repeatable)
chooses instead, name-excluded attributes included, and tracks lacking a chosen label are
rejected as unlabelled.

Splits: the tracks' `split` attribute (what mirdata's `get_track_splits()` reads), or
`subset` (medley_solos_db), when its values name train / validation / test ("official";
an official train+test with no validation gets a seeded validation carved from train:
"official+seeded"; tracks in other splits, e.g. "omitted", are left out). Otherwise
(no split, or folds such as TinySOL's 0-4) a seeded split (`jaxmusic.prepare.splits`).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import math
import numbers
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    PrepareError,
    finish,
    path_arg,
    seed_of,
)
from jaxmusic.prepare.splits import DEFAULT_FRACTIONS, assign_split

INSTALL = "pip install 'jaxmusic[mirdata]'"
SPLIT_ATTRIBUTES = ("split", "subset")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "dev": "valid",
    "test": "test",
    "testing": "test",
    "evaluation": "test",
    "eval": "test",
}
_AUDIO_KEYS = ("audio", "audio_mix", "audio-mix", "audio_mono")
# Identifiers and free text: not tasks unless asked for with --task.
_NOT_TASKS = frozenset(
    [
        "title",
        "artist",
        "artists",
        "album",
        "composer",
        "performer",
        "singer",
        "musician",
        "name",
        "filename",
        "file_name",
        "url",
        "mbid",
        "mbid_group",
        "date",
        "datetime",
        "release",
        "release_year",
        "year",
        "duration",
        "track_number",
        "piece_number",
        "suffix",
        "license",
        "username",
        "work",
        "work_title",
        "work_artist",
        "performance_title",
        "performance_artist",
        "identifier",
        "recording",
        "concert",
        "excerpt",
        "piece",
        "start_time",
        "canonical_title",
        "canonical_composer",
        "data_home",
        "dataset_name",
        "index",
        "metadata",
        "train",
    ]
)
_NOT_TASK_SUFFIXES = ("_path", "_id", "_ids", "_url", "_uri", "_urls")
# Return annotations of loaders whose values are never clip targets: skipped unread.
_SKIPPED_TYPES = (
    "BeatData",
    "ChordData",
    "SectionData",
    "F0Data",
    "MultiF0Data",
    "NoteData",
    "EventData",
    "LyricData",
    "MultiAnnotator",
    "PrettyMIDI",
    "ndarray",
    "Dict",
    "dict",
    "bool",
    "Tuple[np",
)
_SHOWN = 3


def _mirdata():
    try:
        import mirdata
    except ImportError:
        raise PrepareError(f"prepare mirdata needs the mirdata package: {INSTALL}") from None
    return mirdata


def open_dataset(name: str, data_home: Path, version: str):
    """mirdata's Dataset `name`, or a one-line PrepareError (unknown name or version)."""
    mirdata = _mirdata()
    if name not in mirdata.DATASETS:
        close = difflib.get_close_matches(name, mirdata.DATASETS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see mirdata.list_datasets())"
        raise PrepareError(f"mirdata {mirdata.__version__} has no dataset {name!r}{hint}")
    try:
        return mirdata.initialize(name, data_home=str(data_home), version=version)
    except ImportError as e:  # loaders needing optional packages (music21, DALI)
        raise PrepareError(
            f"mirdata {name}: its loader needs a package that is missing ({str(e) or 'music21 or DALI'}): "
            f"pip install 'mirdata[{name}]'"
        ) from None
    except ValueError as e:  # an unknown version
        raise PrepareError(f"mirdata {name}: {e}") from None
    except KeyError as e:  # mirdata 1.0's simac names a default version it has no index for
        raise PrepareError(
            f"mirdata {name}: its loader has no index for version {e}; pass --version"
        ) from None


def find_index(dataset, data_homes: list[Path], explicit: Path | None) -> Path:
    """The dataset's index file, never downloaded (see the module docstring)."""
    spec = dataset._index_data  # mirdata.core.Index: file name, remote URL and md5
    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(f"--index {explicit} not found: expected mirdata's {spec.filename}")
        return explicit
    candidates = [home / spec.filename for home in data_homes] + [Path(spec.get_path())]
    for c in candidates:
        if c.is_file():
            return c
    if spec.remote is not None:
        raise FileNotFoundError(
            f"mirdata {dataset.name} {dataset.version}: its index {spec.filename} is not packaged with "
            f"mirdata (mirdata fetches it from {spec.remote.url}); put it in {data_homes[0]} or pass "
            "--index FILE (prepare downloads nothing)"
        )
    raise FileNotFoundError(
        f"mirdata {dataset.name} {dataset.version}: index {spec.filename} not found at {candidates[-1]} "
        f"or in {data_homes[0]}; pass --index FILE"
    )


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def audio_key(index: dict, name: str, chosen: str | None) -> str:
    """The index key of each track's audio file."""
    keys = sorted({k for files in index["tracks"].values() for k in files})
    if chosen is not None:
        if chosen not in keys:
            raise PrepareError(
                f"mirdata {name}: --audio-key {chosen!r} is not a key of its index ({', '.join(keys)})"
            )
        return chosen
    for k in _AUDIO_KEYS + tuple(k for k in keys if k.startswith("audio")):
        if k in keys:
            return k
    raise PrepareError(f"mirdata {name}: its index names no audio file per track (keys: {', '.join(keys)})")


def _name_excluded(attr: str) -> bool:
    low = attr.lower()
    return low in _NOT_TASKS or low.endswith(_NOT_TASK_SUFFIXES) or "mbid" in low


def candidate_attributes(track, split_attr: str | None) -> list[str]:
    """Public data attributes of a track (instance attributes and properties), minus the
    ones never read (audio, paths, the split, time-aligned annotations by their type hint)."""
    cls = type(track)
    names = {n for n in vars(track) if not n.startswith("_")}
    for klass in cls.__mro__:
        for n, member in vars(klass).items():
            if not n.startswith("_") and (isinstance(member, property) or hasattr(member, "func")):
                names.add(n)
    out = []
    for n in sorted(names):
        if n.startswith("audio") or n.endswith("_path") or n in ("track_id", split_attr):
            continue
        member = getattr(cls, n, None)
        func = getattr(member, "fget", None) or getattr(member, "func", None)
        hint = str(getattr(func, "__annotations__", {}).get("return", ""))
        if any(t in hint for t in _SKIPPED_TYPES):
            continue
        out.append(n)
    return out


def label_of(value: Any) -> tuple[str, Any] | None:
    """(kind, label) of one attribute value, or None when it is no clip target."""
    from mirdata import annotations as ann

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        return ("single", value) if value else None
    if isinstance(value, numbers.Real):
        return ("regression", float(value)) if math.isfinite(float(value)) else None
    if isinstance(value, ann.KeyData):
        keys = {k.strip() for k in value.keys}
        return ("single", keys.pop()) if len(keys) == 1 else None
    if isinstance(value, ann.TempoData):
        tempos = {float(t) for t in value.tempos}
        return ("regression", tempos.pop()) if len(tempos) == 1 else None
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if items and all(isinstance(v, str) for v in items):
            return ("multi", sorted({v.strip() for v in items if v.strip()}))
        if len(items) == 1 and isinstance(items[0], numbers.Real) and not isinstance(items[0], bool):
            return ("regression", float(items[0]))
        return None
    return None


def _shown(names: list[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


class Mirdata:
    """The `mirdata` adapter."""

    name = "mirdata"
    help = (
        "any dataset with a mirdata 1.0 loader, read through mirdata from its data_home "
        f"(needs {INSTALL}; downloads nothing)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """NAME, --data-home, --version, --task, --index, --audio-key, --strict, --skip-checksums."""
        parser.add_argument("dataset", metavar="NAME", help="mirdata's dataset name, e.g. gtzan_genre")
        parser.add_argument(
            "--data-home",
            required=True,
            type=path_arg,
            help="mirdata's data_home for the dataset, or its parent",
        )
        parser.add_argument(
            "--version", default="default", help="the mirdata index version (default: its default)"
        )
        parser.add_argument(
            "--task",
            action="append",
            metavar="ATTR",
            help="a track attribute to use as a task (repeatable); default: every mapped one labelling all tracks",
        )
        parser.add_argument(
            "--index", type=path_arg, help="the dataset's mirdata index JSON, if not in --data-home"
        )
        parser.add_argument("--audio-key", help="the index key of the audio file (default: audio)")
        parser.add_argument(
            "--strict", action="store_true", help="refuse files whose md5 differs from mirdata's index"
        )
        parser.add_argument(
            "--skip-checksums",
            action="store_true",
            help="check only that files exist (no md5; for huge datasets)",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """The tracks of the index whose audio is present, with their tasks and splits."""
        name = args.dataset
        homes = [args.data_home, args.data_home / name]
        dataset = open_dataset(name, homes[0], args.version)
        index_path = find_index(dataset, homes, args.index)
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise PrepareError(f"{index_path}: not a readable mirdata index ({e})") from None
        if not isinstance(index, dict) or not index.get("tracks"):
            raise PrepareError(f"{index_path}: mirdata {name}'s index lists no tracks")
        key = audio_key(index, name, args.audio_key)
        tracks = index["tracks"]
        home = self._data_home(homes, tracks, key)
        dataset = open_dataset(name, home, args.version)
        dataset.index_path = str(index_path)  # read by mirdata instead of its (absent) cached copy

        finder = AudioFinder()
        present, missing = [], []
        for tid, files in tracks.items():
            rel = (files.get(key) or [None])[0]
            if rel is None:
                continue
            if finder.find(home / rel) is None:
                missing.append(rel)
            else:
                present.append(tid)
        if not present:
            raise FileNotFoundError(
                f"mirdata {name}: none of the {len(tracks)} tracks in its index has its audio under {home} "
                f"(looked for e.g. {home / missing[0]})"
            )

        checks = self._validate(name, index, index_path, dataset, home, present, args)
        loaded = {tid: dataset.track(tid) for tid in present}
        split_attr = next((a for a in SPLIT_ATTRIBUTES if hasattr(type(loaded[present[0]]), a)), None)
        split_attr = split_attr or next((a for a in SPLIT_ATTRIBUTES if a in vars(loaded[present[0]])), None)
        tasks, labels, task_note = self._tasks(name, loaded, split_attr, args.task)
        splits, split, note = self._splits(name, loaded, split_attr, seed_of(args))

        items = [
            Item(
                path=str(home / tracks[tid][key][0]),
                clip_id=tid,
                labels=labels[tid],
                split=splits[tid],
            )
            for tid in present
            if tid in splits
        ]
        source = {
            "adapter": self.name,
            "dataset": name,
            "version": dataset.version,
            "mirdata": _mirdata().__version__,
            "data_home": str(home),
            "index": str(index_path),
            "audio_key": key,
            "tasks": task_note,
            "checksums": checks,
            "split": split,
            "split_note": note,
        }
        return finish(f"mirdata {name}", tasks, items, missing, source)

    @staticmethod
    def _data_home(homes: list[Path], tracks: dict, key: str) -> Path:
        """--data-home itself, or its NAME/ when that is where the audio lies."""
        sample = [files[key][0] for files in list(tracks.values())[:50] if files.get(key) and files[key][0]]
        finder = AudioFinder()
        found = [sum(finder.find(h / rel) is not None for rel in sample) for h in homes]
        return homes[1] if found[1] > found[0] else homes[0]

    @staticmethod
    def _validate(name, index, index_path, dataset, home, present, args) -> dict:
        """mirdata's validate (exists, md5) over the index, its metadata and the present tracks' files."""
        from mirdata import validate

        files = []  # (shown name, local path, md5)
        spec = dataset._index_data
        if spec.remote is not None:
            files.append((f"index {index_path.name}", None, spec.remote.checksum))
        for meta in (index.get("metadata") or {}).values():
            if meta and meta[0]:
                files.append((meta[0], home / meta[0], meta[1]))
        for tid in present:
            for rel, md5 in index["tracks"][tid].values():
                if rel is not None:
                    files.append((rel, home / rel, md5))

        def check(entry) -> tuple[bool, bool]:
            _, path, md5 = entry
            if args.skip_checksums:
                return path is None or path.is_file(), True
            if path is None:
                return True, _md5(index_path) == md5
            return validate.validate(str(path), md5)

        with ThreadPoolExecutor(max(1, int(getattr(args, "workers", 1) or 1))) as pool:
            results = list(pool.map(check, files))
        absent = [f[0] for f, (exists, _) in zip(files, results, strict=True) if not exists]
        bad = [f[0] for f, (exists, valid) in zip(files, results, strict=True) if exists and not valid]
        if bad:
            if args.strict:
                raise PrepareError(
                    f"mirdata {name}: {len(bad)} of {len(files)} files differ from mirdata's checksums "
                    f"({_shown(bad)}); without --strict they are kept"
                )
            warnings.warn(
                f"mirdata {name}: {len(bad)} of {len(files)} files differ from mirdata's checksums "
                f"({_shown(bad)}); kept (--strict refuses them)",
                stacklevel=4,
            )
        return {
            "checked": len(files),
            "md5": not args.skip_checksums,
            "mismatched": len(bad),
            "first_mismatched": bad[:_SHOWN],
            "annotations_missing": len(absent),
        }

    @staticmethod
    def _tasks(name, loaded, split_attr, chosen):
        """Tasks from the tracks' attributes (see the module docstring), labels per track."""
        first = next(iter(loaded.values()))
        attrs = candidate_attributes(first, split_attr)
        if chosen:
            known = set(vars(first)) | {n for k in type(first).__mro__ for n in vars(k)}
            unknown = [
                a for a in chosen if a.startswith("_") or a not in known or a in (split_attr, "track_id")
            ]
            if unknown:
                raise PrepareError(
                    f"mirdata {name}: --task {unknown[0]!r} is not a track attribute "
                    f"(candidates: {', '.join(a for a in attrs if not _name_excluded(a))})"
                )
            attrs = list(dict.fromkeys(chosen))
        else:
            attrs = [a for a in attrs if not _name_excluded(a)]
        values: dict[str, dict[str, tuple[str, Any]]] = {}
        errors: dict[str, tuple[int, str]] = {}
        unreadable: dict[str, str] = {}
        for attr in attrs:
            got = {}
            for tid, track in loaded.items():
                try:
                    mapped = label_of(getattr(track, attr))
                except FileNotFoundError as e:  # its annotation file is absent: no label
                    unreadable.setdefault(attr, f"{type(e).__name__}: {e}")
                    continue
                except Exception as e:  # a loader failing on one file must not stop the rest
                    n, first_error = errors.get(attr, (0, f"{type(e).__name__}: {e}"))
                    errors[attr] = (n + 1, first_error)
                    continue
                if mapped is not None:
                    got[tid] = mapped
            kinds = Counter(kind for kind, _ in got.values())
            if kinds:
                kind = kinds.most_common(1)[0][0]
                values[attr] = {tid: v for tid, v in got.items() if v[0] == kind}
        for attr, (n, first_error) in errors.items():
            warnings.warn(
                f"mirdata {name}: {attr} could not be read for {n} tracks ({first_error})", stacklevel=5
            )

        tasks, note = {}, {}
        for attr in attrs:
            got = values.get(attr, {})
            if not got:
                if attr in unreadable or attr in errors:
                    note[attr] = f"skipped: not readable ({unreadable.get(attr) or errors[attr][1]})"
                if chosen:
                    raise PrepareError(
                        f"mirdata {name}: --task {attr}: no track present has a single-label, multi-label "
                        "or regression value for it"
                    )
                continue
            kind = next(iter(got.values()))[0]
            labelled = len(got)
            distinct = {json.dumps(v[1]) for v in got.values()}
            if not chosen and (labelled < len(loaded) or len(distinct) < 2):
                note[attr] = (
                    f"skipped: {kind}, labels {labelled} of {len(loaded)} tracks, {len(distinct)} distinct"
                )
                continue
            note[attr] = f"{kind}, labels {labelled} of {len(loaded)} tracks"
            if kind == "single":
                tasks[attr] = {"kind": "single", "classes": sorted({v[1] for v in got.values()})}
            elif kind == "multi":
                tasks[attr] = {"kind": "multi", "classes": sorted({c for v in got.values() for c in v[1]})}
            else:
                tasks[attr] = {"kind": "regression"}
        if not tasks:
            found = "; ".join(f"{a}: {n}" for a, n in note.items()) or "none of a mappable type"
            raise PrepareError(
                f"mirdata {name}: no track attribute labels every track present ({found}); choose with --task ATTR"
            )
        labels = {}
        for tid in loaded:
            lab = {}
            for attr, task in tasks.items():
                if tid not in values[attr]:
                    continue
                v = values[attr][tid][1]
                if task["kind"] == "single":
                    lab[attr] = task["classes"].index(v)
                elif task["kind"] == "multi":
                    lab[attr] = [task["classes"].index(c) for c in v]
                else:
                    lab[attr] = v
            labels[tid] = lab
        return tasks, labels, note

    @staticmethod
    def _splits(name, loaded, split_attr, seed):
        """Track id -> split (None: seeded by prepare_items), the split kind and its note."""
        n = len(loaded)
        if split_attr is not None:
            raw = {}
            for tid, track in loaded.items():
                try:
                    raw[tid] = getattr(track, split_attr)
                except Exception:
                    raw[tid] = None
            mapped = {tid: SPLIT_NAMES.get(str(v).strip().lower()) for tid, v in raw.items()}
            if any(mapped.values()):
                out = {tid: s for tid, s in mapped.items() if s is not None}
                left = sorted({str(raw[tid]) for tid in raw if mapped[tid] is None})
                left_note = f", {n - len(out)} tracks in {', '.join(left)} left out" if left else ""
                counts = Counter(out.values())
                if counts["train"] and counts["test"] and not counts["valid"]:
                    train, valid = DEFAULT_FRACTIONS[0], DEFAULT_FRACTIONS[1]
                    fractions = (train / (train + valid), valid / (train + valid), 0.0)
                    for tid, s in out.items():
                        if s == "train":
                            out[tid] = assign_split(tid, seed, fractions)
                    counts = Counter(out.values())
                    sizes = "/".join(str(counts[s]) for s in ("train", "valid", "test"))
                    return (
                        out,
                        "official+seeded",
                        (
                            f"mirdata {name}'s official train/test ({split_attr}) with a seeded validation "
                            f"from train ({sizes}{left_note})"
                        ),
                    )
                sizes = "/".join(str(counts[s]) for s in ("train", "valid", "test"))
                return out, "official", f"mirdata {name}'s official split ({split_attr}: {sizes}{left_note})"
            values = sorted({str(v) for v in raw.values()})
            return (
                dict.fromkeys(loaded),
                "seeded",
                f"seeded split: mirdata {name}'s {split_attr} holds {_shown(values)}, not train/validation/test",
            )
        return dict.fromkeys(loaded), "seeded", f"seeded split: mirdata {name} has no official split"
