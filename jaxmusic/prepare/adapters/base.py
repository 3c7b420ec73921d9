"""What every dataset adapter returns and shares: `DatasetItems`, the `Adapter` protocol,
and the few helpers they have in common (finding audio files, reporting the missing ones,
reading delimited metadata); seeded splits are `jaxmusic.prepare.splits`'.

Adapters read metadata only; decoding, resampling and rejecting unusable audio is
`prepare_items`'s job, so an adapter runs in seconds even on 300k-clip datasets.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from jaxmusic.prepare.items import Item, PrepareError

__all__ = ["Adapter", "AudioFinder", "DatasetItems", "Item", "PrepareError"]


@dataclasses.dataclass(frozen=True)
class DatasetItems:
    """A dataset as `prepare_items` takes it.

    `missing` lists metadata rows whose audio file was not found (skipped, not fatal);
    `source` records which files and options were read, for the manifest.
    """

    name: str
    tasks: dict[str, dict[str, Any]]
    items: list[Item]
    missing: list[str]
    source: dict[str, Any]


class Adapter(Protocol):
    """Reads one dataset in its distributor's layout; downloads nothing."""

    name: str  # CLI name: `jaxmusic prepare NAME`
    help: str  # one line, with where to obtain the dataset

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this dataset's options (`--root DIR`, split files, ...)."""

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """The dataset's items, tasks and splits from the parsed options."""


def path_arg(text: str) -> Path:
    """A path option, made absolute: item paths and the manifest's source then do not
    depend on the directory `prepare` was started from (a resumed run matches)."""
    return Path(text).expanduser().absolute()


def add_root(parser: argparse.ArgumentParser, what: str) -> None:
    """The `--root DIR` option every adapter has."""
    parser.add_argument("--root", required=True, type=path_arg, help=f"the dataset folder: {what}")


def seed_of(args: argparse.Namespace) -> int:
    """The seed of adapter-made splits: the CLI's `--seed` when it defines one."""
    return int(getattr(args, "seed", 0) or 0)


class AudioFinder:
    """Finds the first existing file among candidate paths.

    Lists each folder once and answers from the listing: a stat per clip is slow on
    network file systems and NSynth alone has 300k clips.
    """

    def __init__(self) -> None:
        self._listings: dict[Path, frozenset[str]] = {}

    def _files(self, folder: Path) -> frozenset[str]:
        if folder not in self._listings:
            try:
                # DirEntry.is_file needs no extra stat on common file systems (links excepted).
                with os.scandir(folder) as entries:
                    self._listings[folder] = frozenset(e.name for e in entries if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                self._listings[folder] = frozenset()
        return self._listings[folder]

    def find(self, *candidates: Path) -> Path | None:
        """The first candidate that exists as a file (or a link to one), else None."""
        for c in candidates:
            if c.name in self._files(c.parent):
                return c
        return None


def report_missing(name: str, missing: Sequence[str], total: int) -> None:
    """Warn once, naming the first few, that rows without audio were skipped."""
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.warn(
            f"{name}: {len(missing)} of {total} metadata rows have no audio file and are skipped ({shown})",
            stacklevel=4,  # the line that called the adapter's items()
        )


def finish(
    name: str,
    tasks: dict[str, dict[str, Any]],
    items: list[Item],
    missing: list[str],
    source: dict[str, Any],
) -> DatasetItems:
    """Check the items, warn about missing audio, and bundle them."""
    twice = [i for i, n in Counter(it.clip_id for it in items).items() if n > 1]
    if twice:
        raise PrepareError(f"{name}: clip id {twice[0]!r} occurs twice in the metadata")
    if not items:
        raise FileNotFoundError(
            f"{name}: none of the {len(missing)} clips in the metadata has its audio under --root "
            f"(looked for e.g. {missing[:1]})"
        )
    report_missing(name, missing, len(items) + len(missing))
    return DatasetItems(name=name, tasks=tasks, items=items, missing=missing, source=source)


def require_file(path: Path, what: str, origin: str = "") -> Path:
    """`path`, or a one-line FileNotFoundError saying what it should be and where it comes from."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected {what}" + (f" ({origin})" if origin else ""))
    return path


def locate(root: Path, marker: str, what: str, origin: str) -> Path:
    """The dataset folder: `root` if `root/marker` exists, else the one subfolder of `root`
    that has it (users pass the dataset folder or the folder above it); else a one-line
    FileNotFoundError naming the marker, where it was looked for, and where the dataset
    comes from. `marker` may have several parts ("annotations/key")."""
    if (root / marker).exists():
        return root
    try:
        children = sorted(c for c in root.iterdir() if c.is_dir() and (c / marker).exists())
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"--root {root} does not exist: expected {what} ({origin})") from None
    if len(children) > 1:
        raise PrepareError(
            f"{root} holds several {what} ({', '.join(c.name for c in children[:3])}): pass one as --root"
        )
    if not children:
        raise FileNotFoundError(f"no {marker} in {root} or its subfolders: expected {what} ({origin})")
    return children[0]


def split_info(split: str, note: str) -> dict[str, str]:
    """The `source` entries every adapter records: which kind of split ("official", "filtered",
    "seeded" or "official+seeded") and one sentence saying which split it is."""
    assert split in SPLIT_KINDS, split
    return {"split": split, "split_note": note}


SPLIT_KINDS = ("official", "filtered", "seeded", "official+seeded")
SEEDED_NOTE = "seeded 80/10/10 split of clips made by prepare (--seed), not comparable with published figures"


def read_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a delimited file with a header, keys and values stripped of spaces.

    Distributors' files carry stray spaces after delimiters and CRLF endings; both go.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = [h.strip() for h in next(reader)]
        return [{k: v.strip() for k, v in zip(header, row, strict=False)} for row in reader if any(row)]


def class_index(classes: Sequence[str]) -> dict[str, int]:
    """Class name -> index."""
    return {c: i for i, c in enumerate(classes)}
