"""Labels and captions files as people write them, read into per-file labels.

A labels file maps each audio file (a path relative to the folder) to a value per task;
this module infers each task's kind and classes and encodes the values as `Item`s take
them. A captions file maps files to captions.

Files as they come: UTF-8 with or without a byte-order mark, else Windows-1252 (with a
one-line warning); CSV separated by commas, semicolons or tabs (`.csv`, `.tsv`, `.txt`:
sniffed from the header line); header names stripped; file names in Unicode NFC (macOS
writes NFD), with `./`, `a/../` and backslashes normalised, so two rows naming one file
are caught.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import math
import posixpath
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from jaxmusic.prepare.items import KINDS
from jaxmusic.prepare.shards import PrepareError

_SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}
# The path column when --path-column is not given: the first of these present (case-insensitive).
PATH_COLUMNS = ("path", "file", "filename", "file_name", "audio", "audio_path", "track")
DELIMITERS = (",", ";", "\t")
# Integer-valued columns with at most this many distinct values are class ids.
MAX_INTEGER_CLASSES = 32
_INTEGER = re.compile(r"[+-]?\d+")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """`--task COLUMN[:KIND][=NAME]`: which column becomes a task, of which kind, under which name."""

    column: str
    kind: str | None = None
    name: str | None = None


def parse_task(text: str) -> TaskSpec:
    """`genre`, `tonic:single`, `bpm:regression=tempo`, `mood=feel` as a TaskSpec."""
    column, eq, name = text.partition("=")
    base, colon, kind = column.rpartition(":")
    if not colon:
        base, kind = column, ""
    elif kind not in KINDS:
        raise PrepareError(f"--task {text!r}: the kind after ':' must be one of {', '.join(KINDS)}")
    if not base.strip() or (eq and not name.strip()):
        raise PrepareError(f"--task {text!r}: expected COLUMN[:KIND][=NAME], e.g. genre or tonic:single=key")
    return TaskSpec(base.strip(), kind or None, name.strip() or None)


@dataclasses.dataclass(frozen=True)
class Labels:
    """A labels file read: tasks (manifest entries), each file's encoded labels and split,
    and for each task one line saying how its kind was chosen (printed by the CLI)."""

    tasks: dict
    labels: dict[str, dict]
    splits: dict[str, str | None]
    notes: dict[str, str]
    has_split_column: bool


def read_labels(
    path: str | Path,
    root: Path,
    *,
    path_column: str | None = None,
    tasks: list[TaskSpec] | None = None,
) -> Labels:
    """Read a labels file.

    CSV/TSV with a header row naming a path column (`path_column`, else the first of
    PATH_COLUMNS present, case-insensitive), task columns and optionally `split`; or JSON
    `{path: {task: value}}`. Every other column is a task unless `tasks` is given, when
    only those columns are (with their kind forced and their name changed where given).

    A task's kind, unless forced (by `tasks` or a column named `task:single`,
    `task:multi` or `task:regression`), is inferred from its values, in this order:
    any list or value holding ';' is multi-label; all integers (`3`, not `3.0`) with at
    most MAX_INTEGER_CLASSES distinct values are class ids, single-label (a key's tonic
    0-11, a rating 1-5); other numbers are regression; anything else single-label.
    Classes are sorted (numerically when all are numbers).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        rows = _read_json_labels(path)
        split_key = "split"
    else:
        rows, split_key = _read_csv_labels(path, path_column)
    by_rel = _normalised(rows, root, path)
    table = {rel: row for rel, (_, _, row) in by_rel.items()}
    columns = list(dict.fromkeys(c for row in table.values() for c in row if c != split_key))
    chosen = _choose(path, columns, tasks)
    out_tasks: dict = {}
    notes: dict[str, str] = {}
    encoded: dict[str, dict] = {rel: {} for rel in table}
    for column, forced, name in chosen:
        values = {rel: row.get(column) for rel, row in table.items()}
        if all(_missing(v) for v in values.values()):
            raise PrepareError(f"{path}: column {column!r} has no values")
        base, _, suffix = column.rpartition(":")
        header_kind = suffix if base and suffix in KINDS else None
        task = name or (base if header_kind else column)
        if forced is not None:
            kind, how = forced, "from --task"
        elif header_kind is not None:
            kind, how = header_kind, f"from the column name {column!r}"
        else:
            kind, why = _infer_kind(list(values.values()))
            how = f"inferred: {why}"
            if why.endswith("class ids"):
                how += f"; --task {column}:regression to treat them as numbers"
        if task in out_tasks:
            raise PrepareError(f"{path}: task {task!r} appears twice")
        out_tasks[task], column_values = _encode_column(path, task, kind, values)
        notes[task] = how
        for rel, value in column_values.items():
            encoded[rel][task] = value
    splits = {rel: _split_name(path, rel, row.get(split_key)) for rel, row in table.items()}
    has_split = any(split_key in row for row in table.values())
    return Labels(out_tasks, encoded, splits, notes, has_split)


def _choose(
    path: Path, columns: list[str], tasks: list[TaskSpec] | None
) -> list[tuple[str, str | None, str | None]]:
    """(column, forced kind, new name) for each column that becomes a task."""
    if not tasks:
        return [(c, None, None) for c in columns]
    chosen = []
    for spec in tasks:
        matches = [c for c in columns if c == spec.column or c.rpartition(":")[0] == spec.column]
        if not matches:
            lower = spec.column.lower()
            matches = [c for c in columns if c.lower() == lower or c.rpartition(":")[0].lower() == lower]
        if not matches:
            raise PrepareError(
                f"--task {spec.column}: no such column in {path} (its task columns: {', '.join(columns) or 'none'})"
            )
        chosen.append((matches[0], spec.kind, spec.name))
    return chosen


def read_text(path: Path) -> str:
    """A text file in UTF-8 (a byte-order mark dropped), else Windows-1252 with a
    one-line warning on stderr; a one-line PrepareError when it is neither."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        bad = data[e.start : e.start + 1].hex()
        try:
            text = data.removeprefix(codecs.BOM_UTF8).decode("cp1252")
        except UnicodeDecodeError:
            raise PrepareError(
                f"{path}:{line}: not UTF-8 (byte 0x{bad}) nor Windows-1252: save the file as UTF-8"
            ) from None
    print(
        f"jaxmusic: warning: {path} is not UTF-8 (byte 0x{bad} on line {line}): read as Windows-1252",
        file=sys.stderr,
    )
    return text


def _sniff(header: str, path: Path) -> str:
    """The delimiter of the header line: whichever of , ; TAB it holds most (TAB first
    for .tsv, comma when it holds none)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    if path.suffix.lower() == ".tsv" and counts["\t"]:
        return "\t"
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv_labels(path: Path, path_column: str | None) -> tuple[list[tuple[str, str, dict]], str]:
    """Rows as (where, path, {column: cell}) and the name of the split column."""
    text = read_text(path)
    delimiter = _sniff(text.split("\n", 1)[0], path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    named = [h for h in header if h]
    if len(set(named)) < len(named):
        twice = sorted({h for h in named if named.count(h) > 1})
        raise PrepareError(f"{path}: column {twice[0]!r} appears twice in the header")
    key = _path_column(path, header, path_column)
    split_key = next((h for h in header if h.lower() == "split"), "split")
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        where = f"line {reader.line_num}"
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            raise PrepareError(f"{path}:{reader.line_num}: more cells than header columns")
        row = dict(zip(header, cells, strict=False))
        for i, name in enumerate(header):
            if not name and i < len(cells) and cells[i].strip():
                raise PrepareError(f"{path}:{reader.line_num}: a value in column {i + 1}, which has no name")
        rows.append((where, row.pop(key, ""), {c: _csv_cell(v) for c, v in row.items() if c}))
    return rows, split_key


def _path_column(path: Path, header: list[str], wanted: str | None) -> str:
    lower = {h.lower(): h for h in reversed(header) if h}
    if wanted is not None:
        if wanted.strip().lower() in lower:
            return lower[wanted.strip().lower()]
        raise PrepareError(f"{path}: no column {wanted!r} (--path-column) in its header: {', '.join(header)}")
    for name in PATH_COLUMNS:
        if name in lower:
            return lower[name]
    raise PrepareError(
        f"{path}: a labels CSV needs a header row with a path column ({', '.join(PATH_COLUMNS)}, "
        f"or name it with --path-column); its header: {', '.join(header) or 'empty'}"
    )


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


def _read_json_labels(path: Path) -> list[tuple[str, str, dict]]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise PrepareError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PrepareError(f"{path}: expected a JSON object {{path: {{task: value}}}}")
    return [(f"entry {name!r}", name, row) for name, row in data.items()]


def _normalised(rows: list[tuple[str, str, Any]], root: Path, path: Path) -> dict[str, tuple[str, str, Any]]:
    """Rows by the clip id their path names; two rows naming one file are an error."""
    out: dict[str, tuple[str, str, Any]] = {}
    for where, name, row in rows:
        rel = _relative(name, root, path, where)
        if rel in out:
            first, first_name = out[rel][0], out[rel][1]
            raise PrepareError(
                f"{path}: {first} ({first_name!r}) and {where} ({name!r}) both name {rel}: keep one"
            )
        out[rel] = (where, name, row)
    return out


def normalise_name(name: str) -> str:
    """A relative file name as clip ids are written: POSIX, NFC."""
    return unicodedata.normalize("NFC", name)


def _relative(name: str, root: Path, labels_path: Path, where: str = "a row") -> str:
    """A labels-file path as the clip id it names (relative to the folder, POSIX, NFC)."""
    name = normalise_name(str(name).strip().replace("\\", "/"))
    if not name:
        raise PrepareError(f"{labels_path}: {where} has an empty path")
    if posixpath.isabs(name):
        try:
            return normalise_name(Path(name).resolve().relative_to(root).as_posix())
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


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and _INTEGER.fullmatch(value.strip()) is not None


def _infer_kind(values: list[Any]) -> tuple[str, str]:
    """The kind of a column's values and why (see read_labels)."""
    present = [v for v in values if not _missing(v)]
    if any(isinstance(v, list) or (isinstance(v, str) and ";" in v) for v in present):
        return "multi", "lists or ';'-separated values"
    if present and all(_is_integer(v) for v in present):
        distinct = len({int(v) for v in present})
        if distinct <= MAX_INTEGER_CLASSES:
            return "single", f"{distinct} distinct integers (<= {MAX_INTEGER_CLASSES}) are class ids"
        return "regression", f"integers with {distinct} distinct values (> {MAX_INTEGER_CLASSES})"
    if present and all(_number(v) is not None for v in present):
        return "regression", "numbers"
    return "single", "text values"


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
    present = {rel: value for rel, value in values.items() if not _missing(value)}
    integers = all(_is_integer(v) for v in present.values())
    names = {rel: str(int(v)) if integers else _class_name(v) for rel, v in present.items()}
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
    """Read a JSON-lines captions file, one `{"path": ..., "caption": ...}` per line
    (UTF-8, a byte-order mark allowed, else Windows-1252 with a warning)."""
    path = Path(path)
    captions: dict[str, str] = {}
    lines: dict[str, int] = {}
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise PrepareError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not (
            isinstance(row, dict) and isinstance(row.get("path"), str) and isinstance(row.get("caption"), str)
        ):
            raise PrepareError(f'{path}:{n}: expected {{"path": "...", "caption": "..."}}')
        rel = _relative(row["path"], root, path, f"line {n}")
        if rel in captions:
            raise PrepareError(f"{path}: lines {lines[rel]} and {n} both caption {rel}: keep one")
        captions[rel] = row["caption"]
        lines[rel] = n
    return captions
