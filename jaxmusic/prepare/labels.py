"""Labels and captions files as people write them, read into per-file labels.

A labels file maps each audio file (a path relative to the folder) to a value per task;
this module infers each task's kind and classes and encodes the values as `Item`s take
them. A captions file maps files to captions.
"""

from __future__ import annotations

import csv
import json
import math
import posixpath
from pathlib import Path
from typing import Any

from jaxmusic.prepare.items import KINDS
from jaxmusic.prepare.shards import PrepareError

_SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}


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
