"""MagnaTagATune (Law et al. 2009): 25,863 29-second clips, top-50 tags, multi-label.

Obtain from https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset
(mp3.zip.001-003, concatenated and unzipped, and annotations_final.csv).

Layout read (`--root`: the dataset folder, or the folder above it):

    annotations_final.csv      tab-separated, quoted: "clip_id", 188 tag columns of 0/1, "mp3_path"
    0/ 1/ ... f/*.mp3          the audio (also accepted under ROOT/mp3/)

Task `tags` (multi): the 50 most frequent of the 188 tags, most frequent first (ties by
column order), or the order of `tags.npy` when a Won et al. split folder provides one.
Class names are the tag strings, so `subsets.MTAT_GENRES` finds the genre tags for the
limited-data scheme. clip_id is the annotation file's clip_id.

Splits (`--split-style`):

- `pons2017` (default): folders 0-b train, c valid, d-f test (Pons et al. 2017,
  musicnn-training; also CLMR and Castellon et al. 2021): 18,706 / 1,825 / 5,329 clips.
  With `--split-dir`, membership is read from musicnn-training's
  data/index/mtt/{train,val,test}_gt_mtt.tsv ("clip_id<TAB>[50 floats]") instead,
  which also leaves out the three clips known to be broken.
- `won2020`: Won et al. 2020 (sota-music-tagging-models split/mtat/): `--split-dir`
  holds {train,valid,test}.npy, arrays of "row<TAB>mp3_path" strings, row being the
  0-based data row of annotations_final.csv, and tags.npy (the 50 tag names). Clips
  without any top-50 tag are left out (about 15.2k / 1.5k / 4.3k clips).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    PrepareError,
    add_root,
    finish,
    locate,
    path_arg,
    require_file,
    split_info,
)

NUM_TAGS = 50
ORIGIN = "MagnaTagATune comes from https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset"
WON_ORIGIN = "from split/mtat/ of github.com/minzwon/sota-music-tagging-models"
PONS_ORIGIN = "from data/index/mtt/ of github.com/jordipons/musicnn-training"
_SPLIT_FILES = {
    "won2020": {"train": "train.npy", "valid": "valid.npy", "test": "test.npy"},
    "pons2017": {"train": "train_gt_mtt.tsv", "valid": "val_gt_mtt.tsv", "test": "test_gt_mtt.tsv"},
}


def pons_folder_split(mp3_path: str) -> str:
    """Pons et al.'s split by the clip's hexadecimal folder: 0-b train, c valid, d-f test."""
    folder = int(mp3_path.split("/", maxsplit=1)[0], 16)
    return "train" if folder < 12 else "valid" if folder == 12 else "test"


def read_annotations(path: Path) -> tuple[list[str], list[tuple[str, str, list[int]]]]:
    """The 188 tag names and, per clip, (clip_id, mp3_path, 0/1 per tag)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar='"'))
    header = rows[0]
    if header[0] != "clip_id" or header[-1] != "mp3_path":
        raise PrepareError(f"{path}: not MagnaTagATune's annotations_final.csv (header {header[:2]}...)")
    clips = [(r[0], r[-1], [int(v) for v in r[1:-1]]) for r in rows[1:] if r]
    return header[1:-1], clips


def top_tags(tag_names: list[str], clips: list[tuple[str, str, list[int]]], n: int) -> list[str]:
    """The `n` most frequent tags, most frequent first, ties in column order."""
    counts = np.sum([c[2] for c in clips], axis=0)
    order = sorted(range(len(tag_names)), key=lambda i: (-counts[i], i))
    return [tag_names[i] for i in order[:n]]


def _won_split(split_dir: Path, clips: list[tuple[str, str, list[int]]]) -> dict[str, str]:
    """clip_id -> split from Won et al.'s .npy files."""
    by_path = {c[1]: c[0] for c in clips}
    out: dict[str, str] = {}
    for split, fname in _SPLIT_FILES["won2020"].items():
        entries = np.load(
            require_file(split_dir / fname, f"Won et al.'s {split} split file", WON_ORIGIN),
            allow_pickle=False,
        )
        for entry in entries:
            row, mp3_path = str(entry).split("\t")
            clip_id = by_path.get(mp3_path)
            # The row number is a cross-check: the split files are tied to one annotation file.
            r = int(row)
            if clip_id is None or not 0 <= r < len(clips) or clips[r][1] != mp3_path:
                raise PrepareError(
                    f"{split_dir / fname}: entry {str(entry)!r} does not match annotations_final.csv"
                )
            out[clip_id] = split
    return out


def _pons_split(split_dir: Path) -> dict[str, str]:
    """clip_id -> split from musicnn-training's *_gt_mtt.tsv files."""
    out: dict[str, str] = {}
    for split, fname in _SPLIT_FILES["pons2017"].items():
        path = require_file(split_dir / fname, f"musicnn-training's {split} split file", PONS_ORIGIN)
        for line in path.read_text().splitlines():
            if line.strip():
                out[line.split("\t")[0].strip()] = split
    return out


def _split_note(style: str, files: bool) -> dict[str, str]:
    if style == "won2020":
        return split_info(
            "filtered",
            "Won et al. 2020 split (sota-music-tagging-models), clips without a top-50 tag left out",
        )
    if files:
        return split_info(
            "official",
            "Pons et al. 2017 split from musicnn-training's *_gt_mtt.tsv (3 broken clips left out)",
        )
    return split_info(
        "official", "Pons et al. 2017 split by folder: 0-b train, c valid, d-f test (18,706/1,825/5,329)"
    )


class MagnaTagATune:
    """The `mtat` adapter."""

    name = "mtat"
    help = (
        "MagnaTagATune, top-50 tags (get it from https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset; "
        "splits: Pons 2017 folders, or Won 2020 split/mtat/*.npy from github.com/minzwon/sota-music-tagging-models)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --annotations, --split-style, --split-dir."""
        add_root(parser, "annotations_final.csv and the mp3 folders 0..f")
        parser.add_argument(
            "--annotations", type=path_arg, help="annotations_final.csv (default: ROOT/annotations_final.csv)"
        )
        parser.add_argument("--split-style", choices=("pons2017", "won2020"), default="pons2017")
        parser.add_argument(
            "--split-dir",
            type=path_arg,
            help="won2020: the folder with {train,valid,test}.npy and tags.npy; "
            "pons2017 (optional): the folder with {train,val,test}_gt_mtt.tsv",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """Every clip of the chosen split style whose mp3 is present."""
        if args.annotations is not None:
            root: Path = args.root
            ann = require_file(args.annotations, "MagnaTagATune's annotations_final.csv", ORIGIN)
        else:
            root = locate(args.root, "annotations_final.csv", "MagnaTagATune's annotations_final.csv", ORIGIN)
            ann = root / "annotations_final.csv"
        tag_names, clips = read_annotations(ann)
        classes = top_tags(tag_names, clips, NUM_TAGS)
        source_files = {"annotations": str(ann)}
        if args.split_style == "won2020":
            if args.split_dir is None:
                raise FileNotFoundError(
                    "--split-style won2020 needs --split-dir: the folder with {train,valid,test}.npy and "
                    f"tags.npy ({WON_ORIGIN})"
                )
            splits = _won_split(args.split_dir, clips)
            tags_file = args.split_dir / "tags.npy"
            if tags_file.is_file():
                won_tags = [str(t) for t in np.load(tags_file, allow_pickle=False)]
                unknown = sorted(set(won_tags) - set(tag_names))
                if unknown:
                    raise PrepareError(f"{tags_file}: tags {unknown[:3]} are not columns of {ann}")
                classes = won_tags  # the split's own vocabulary, whatever its tie-breaking
            source_files["split_dir"] = str(args.split_dir)
        elif args.split_dir is not None:
            splits = _pons_split(args.split_dir)
            source_files["split_dir"] = str(args.split_dir)
        else:
            splits = {clip_id: pons_folder_split(path) for clip_id, path, _ in clips}

        column = {t: i for i, t in enumerate(tag_names)}
        top = [column[t] for t in classes]
        finder = AudioFinder()
        items, missing = [], []
        for clip_id, mp3_path, tags in clips:
            split = splits.get(clip_id)
            if split is None or not mp3_path:
                continue
            path = finder.find(root / mp3_path, root / "mp3" / mp3_path)
            if path is None:
                missing.append(mp3_path)
                continue
            labels = {"tags": [k for k, col in enumerate(top) if tags[col]]}
            items.append(Item(path=str(path), clip_id=clip_id, labels=labels, split=split))
        tasks = {"tags": {"kind": "multi", "classes": classes}}
        source = {
            "adapter": self.name,
            "root": str(root),
            "files": source_files,
            "split_style": args.split_style,
            **_split_note(args.split_style, args.split_dir is not None),
        }
        return finish(self.name, tasks, items, missing, source)
