"""TinySOL (Cella et al. 2020): 2,913 isolated notes of 14 instruments, played ordinario.

Obtain TinySOL.tar.gz and TinySOL_metadata.csv from https://zenodo.org/record/3685367.

Layout read (`--root`: the dataset folder, or the folder above it):

    TinySOL_metadata.csv   Path, Fold ID, Family, Instrument (abbr.), Instrument (in full),
                           Technique (abbr.), Technique (in full), Pitch, Pitch ID, Dynamics, ...
    TinySOL/<Path>         e.g. TinySOL/Brass/Bass_Tuba/ordinario/BTb-ord-F#1-pp-N-N.wav
                           (ROOT/<Path> is accepted too)

Tasks: `instrument` (single, the 14 "Instrument (in full)" names, sorted) and `pitch`
(single, the MIDI pitches ("Pitch ID") that occur, lowest first, named by "Pitch").
clip_id is the file name without extension.

Splits: TinySOL's official 5 folds, balanced for instrument, pitch and dynamics. Fold
`--test-fold` K (default 0) is test, fold K+1 (mod 5) valid, the other three train;
report the mean over K = 0..4 for the published protocol.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    add_root,
    class_index,
    finish,
    locate,
    path_arg,
    read_rows,
    require_file,
    split_info,
)

NUM_FOLDS = 5
ORIGIN = "TinySOL comes from https://zenodo.org/record/3685367"


def fold_split(fold: int, test_fold: int) -> str:
    """test, valid (the next fold) or train."""
    if fold == test_fold:
        return "test"
    return "valid" if fold == (test_fold + 1) % NUM_FOLDS else "train"


class TinySol:
    """The `tinysol` adapter."""

    name = "tinysol"
    help = "TinySOL instrument and pitch, official folds (get it from https://zenodo.org/record/3685367)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --metadata, --test-fold."""
        add_root(parser, "TinySOL_metadata.csv and the TinySOL/ audio folder")
        parser.add_argument(
            "--metadata", type=path_arg, help="TinySOL_metadata.csv (default: ROOT/TinySOL_metadata.csv)"
        )
        parser.add_argument(
            "--test-fold",
            type=int,
            choices=range(NUM_FOLDS),
            default=0,
            help="the test fold; the next one is valid, the rest train",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """Every note of the metadata whose audio is present."""
        if args.metadata is not None:
            root = args.root
            meta = require_file(args.metadata, "TinySOL_metadata.csv", ORIGIN)
        else:
            root = locate(args.root, "TinySOL_metadata.csv", "TinySOL_metadata.csv", ORIGIN)
            meta = root / "TinySOL_metadata.csv"
        rows = read_rows(meta)
        fold_col = "Fold ID" if rows and "Fold ID" in rows[0] else "Fold"
        instruments = sorted({r["Instrument (in full)"] for r in rows})
        pitch_names = {int(r["Pitch ID"]): r["Pitch"] for r in reversed(rows)}
        pitch_ids = sorted(pitch_names)
        inst_index, pitch_index = class_index(instruments), {p: i for i, p in enumerate(pitch_ids)}
        finder = AudioFinder()
        items, missing = [], []
        for r in rows:
            path = finder.find(root / "TinySOL" / r["Path"], root / r["Path"])
            if path is None:
                missing.append(r["Path"])
                continue
            labels = {
                "instrument": inst_index[r["Instrument (in full)"]],
                "pitch": pitch_index[int(r["Pitch ID"])],
            }
            split = fold_split(int(r[fold_col]), args.test_fold)
            items.append(Item(path=str(path), clip_id=Path(r["Path"]).stem, labels=labels, split=split))
        tasks = {
            "instrument": {"kind": "single", "classes": instruments},
            "pitch": {"kind": "single", "classes": [pitch_names[p] for p in pitch_ids]},
        }
        source = {
            "adapter": self.name,
            "root": str(root),
            "files": {"metadata": str(meta)},
            "test_fold": args.test_fold,
            **split_info(
                "official",
                f"TinySOL's official folds: fold {args.test_fold} test, "
                f"fold {(args.test_fold + 1) % NUM_FOLDS} valid, the other three train",
            ),
        }
        return finish(self.name, tasks, items, missing, source)
