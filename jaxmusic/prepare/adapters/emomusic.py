"""emoMusic (Soleymani et al. 2013, "1000 songs"): 744 45-second clips, arousal and valence.

Obtain clips_45sec.tar.gz and annotations.tar.gz from
https://cvml.unige.ch/databases/emoMusic/ (free registration).

Layout read (`--root`: the dataset folder, or the folder above it):

    clips_45seconds/<song_id>.mp3
    annotations/static_annotations.csv   song_id, mean_arousal, std_arousal, mean_valence, std_valence
    annotations/songs_info.csv           song_id, file_name, Artist, Song title, ..., Mediaeval 2013 set
    (the two CSVs may also lie directly in ROOT, or in `--annotations DIR`)

Tasks `arousal` and `valence` (regression): the clip's mean static rating on the 1-9
scale, as annotated (probes standardise targets themselves). clip_id is the song_id.

Splits: the customary one of Castellon et al. 2021 (jukemir), used by MARBLE and later
probing papers: MediaEval 2013's evaluation songs are test; the development songs are
train or valid by artist, valid when int(sha1(normalised artist)) % 10 >= 8 (the
artist lower-cased, letters and spaces of ASCII only, spaces collapsed): 504 / 115 / 125.
Without songs_info.csv, a seeded split made by `prepare` (not comparable with papers).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from jaxmusic.prepare.adapters.base import (
    SEEDED_NOTE,
    AudioFinder,
    DatasetItems,
    Item,
    PrepareError,
    add_root,
    finish,
    locate,
    path_arg,
    read_rows,
    require_file,
    split_info,
)
from jaxmusic.prepare.splits import fixed_bucket

SCALE = (1.0, 9.0)
ORIGIN = "emoMusic comes from https://cvml.unige.ch/databases/emoMusic/"


def normalise_artist(artist: str) -> str:
    """Lower case, ASCII letters and spaces only, single spaces (Castellon et al.'s key)."""
    kept = "".join(c for c in artist.lower() if ord(c) < 128 and (c.isalpha() or c.isspace()))
    return " ".join(kept.split())


def customary_split(info: dict[str, str]) -> str:
    """test for MediaEval 2013's evaluation set, else train/valid by hashed artist."""
    if info["Mediaeval 2013 set"].lower() == "evaluation":
        return "test"
    bucket = fixed_bucket(normalise_artist(info["Artist"]), 10)
    return "train" if bucket < 8 else "valid"


def annotation_dir(root: Path, given: Path | None) -> Path:
    """Where static_annotations.csv is: --annotations, ROOT/annotations or ROOT."""
    if given is not None:
        return given
    return root / "annotations" if (root / "annotations" / "static_annotations.csv").is_file() else root


class EmoMusic:
    """The `emomusic` adapter."""

    name = "emomusic"
    help = (
        "emoMusic arousal/valence regression, Castellon et al. split "
        "(get clips_45sec and annotations from https://cvml.unige.ch/databases/emoMusic/)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --annotations."""
        add_root(parser, "clips_45seconds/ and annotations/")
        parser.add_argument(
            "--annotations",
            type=path_arg,
            help="folder with static_annotations.csv and songs_info.csv (default: ROOT/annotations or ROOT)",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """Every annotated song whose clip is present."""
        root = locate(args.root, "clips_45seconds", "emoMusic's clips_45seconds/ folder", ORIGIN)
        ann_dir = annotation_dir(root, args.annotations)
        static = require_file(ann_dir / "static_annotations.csv", "emoMusic's static annotations", ORIGIN)
        info_path = ann_dir / "songs_info.csv"
        info = {str(int(r["song_id"])): r for r in read_rows(info_path)} if info_path.is_file() else None
        if info is None:
            warnings.warn(f"emomusic: no {info_path}: a seeded split, not the customary one", stacklevel=2)
        finder = AudioFinder()
        items, missing = [], []
        for row in read_rows(static):
            song_id = str(int(row["song_id"]))
            path = finder.find(root / "clips_45seconds" / f"{song_id}.mp3")
            if path is None:
                missing.append(f"clips_45seconds/{song_id}.mp3")
                continue
            labels = {"arousal": float(row["mean_arousal"]), "valence": float(row["mean_valence"])}
            if info is not None and song_id not in info:
                raise PrepareError(f"{info_path}: song {song_id} of {static.name} is not listed")
            split = customary_split(info[song_id]) if info is not None else None
            items.append(Item(path=str(path), clip_id=song_id, labels=labels, split=split))
        tasks = {
            "arousal": {"kind": "regression", "range": list(SCALE)},
            "valence": {"kind": "regression", "range": list(SCALE)},
        }
        source = {
            "adapter": self.name,
            "root": str(root),
            "files": {"static_annotations": str(static), "songs_info": str(info_path) if info else None},
            **(
                split_info(
                    "official",
                    "Castellon et al. 2021 split: MediaEval 2013 evaluation songs test, development songs "
                    "train/valid by artist (504/115/125)",
                )
                if info is not None
                else split_info("seeded", f"{SEEDED_NOTE}; songs_info.csv is needed for the customary split")
            ),
        }
        return finish(self.name, tasks, items, missing, source)
