"""MTG-Jamendo auto-tagging (Bogdanov et al. 2019): full tracks, multi-label tags.

Obtain the audio with the dataset's download script (raw_30s/audio or audio-low, or the
autotagging_moodtheme subset) and the metadata by cloning
https://github.com/MTG/mtg-jamendo-dataset.

Layout read:

    --split-dir   mtg-jamendo-dataset/data/splits/split-N/ with
                  autotagging_<subset>-{train,validation,test}.tsv, tab-separated:
                  TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS... (one tag per column,
                  e.g. genre---rock, mood/theme---happy)
    --root        the audio folder: NN/<id>.mp3 (full quality) or NN/<id>.low.mp3 (audio-low)

Subsets (`--subset`): top50 (autotagging_top50tags, the usual benchmark), genre (87
tags in split-0), instrument (40), moodtheme (56), all (autotagging, every tag). Task: `tags` for top50 and all,
else named after the subset (multi); classes are the tags found in the subset's three
files, sorted, with their category prefix. clip_id is TRACK_ID, e.g. "track_0000214".

Splits: the official split files (split-0 is the one papers report; `--split-dir` picks
any), validation read as valid. Tracks are whole songs: pass `prepare`'s maximum length
if only a part is wanted.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    PrepareError,
    add_root,
    class_index,
    finish,
    path_arg,
    require_file,
    split_info,
)

SUBSET_FILES = {
    "top50": "autotagging_top50tags",
    "genre": "autotagging_genre",
    "instrument": "autotagging_instrument",
    "moodtheme": "autotagging_moodtheme",
    "all": "autotagging",
}
SPLITS = {"train": "train", "validation": "valid", "test": "test"}


def read_split_file(path: Path) -> list[tuple[str, str, list[str]]]:
    """(TRACK_ID, PATH, tags) per row of an MTG-Jamendo split file."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [[v.strip() for v in row] for row in csv.reader(f, delimiter="\t")]
    header = rows[0]
    if header[:4] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH"]:
        raise PrepareError(f"{path}: not an MTG-Jamendo split file (header {header})")
    return [(r[0], r[3], [t for t in r[5:] if t]) for r in rows[1:] if r and r[0]]


class MtgJamendo:
    """The `jamendo` adapter."""

    name = "jamendo"
    help = (
        "MTG-Jamendo auto-tagging, official splits "
        "(audio and metadata from https://github.com/MTG/mtg-jamendo-dataset)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --split-dir, --subset."""
        add_root(parser, "the audio folders NN/ holding <id>.mp3 or <id>.low.mp3")
        parser.add_argument(
            "--split-dir",
            type=path_arg,
            required=True,
            help="mtg-jamendo-dataset/data/splits/split-0 (or split-1..4)",
        )
        parser.add_argument("--subset", choices=tuple(SUBSET_FILES), default="top50")

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """The subset's tracks in the three split files whose audio is present."""
        stem = SUBSET_FILES[args.subset]
        rows, files = {}, {}
        for official, split in SPLITS.items():
            path = require_file(
                args.split_dir / f"{stem}-{official}.tsv",
                f"an MTG-Jamendo {official} split file",
                "from data/splits/ of github.com/MTG/mtg-jamendo-dataset",
            )
            rows[split] = read_split_file(path)
            files[split] = str(path)
        classes = sorted({t for split_rows in rows.values() for _, _, tags in split_rows for t in tags})
        index = class_index(classes)
        task = "tags" if args.subset in ("top50", "all") else args.subset
        finder = AudioFinder()
        items, missing = [], []
        for split, split_rows in rows.items():
            for track_id, rel, tags in split_rows:
                path = finder.find(args.root / rel, args.root / rel.replace(".mp3", ".low.mp3"))
                if path is None:
                    missing.append(rel)
                    continue
                labels = {task: sorted(index[t] for t in set(tags))}
                items.append(Item(path=str(path), clip_id=track_id, labels=labels, split=split))
        tasks = {task: {"kind": "multi", "classes": classes}}
        source = {
            "adapter": self.name,
            "root": str(args.root),
            "subset": args.subset,
            "files": files,
            **split_info("official", f"MTG-Jamendo's official {args.split_dir.name} split files"),
        }
        return finish(self.name, tasks, items, missing, source)
