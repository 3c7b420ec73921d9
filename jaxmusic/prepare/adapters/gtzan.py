"""GTZAN genre (Tzanetakis & Cook 2002): 1,000 30-second clips, 10 genres, single-label.

Obtain from http://marsyas.info/downloads/datasets.html (genres.tar.gz, .au files) or a
mirror with .wav files (e.g. Kaggle's "GTZAN Dataset - Music Genre Classification",
genres_original/). The fault-filtered split files come from
https://github.com/coreyker/dnn-mgr/tree/master/gtzan (also in minzwon/sota-music-tagging-models).

Layout read (`--root`, the folder holding the genre folders, or its parent holding
genres/ or genres_original/):

    <genre>/<genre>.000NN.wav   (or .au)

Task `genre` (single): blues, classical, country, disco, hiphop, jazz, metal, pop,
reggae, rock. clip_id is the file stem, e.g. "blues.00012".

Splits: with `--split-dir`, the fault-filtered split of Kereliuk et al. 2015 / Sturm
(train_filtered.txt, valid_filtered.txt, test_filtered.txt, lines like
"blues/blues.00012.wav"): 443 / 197 / 290 clips, the other 70 left out. Without it, all
1,000 clips with a seeded split made by `prepare` (not comparable with published figures).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    PrepareError,
    add_root,
    finish,
    path_arg,
    require_file,
)

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt", "test": "test_filtered.txt"}
_EXTENSIONS = (".wav", ".au")


def genre_folder(root: Path) -> Path:
    """The folder whose subfolders are the genres: ROOT, ROOT/genres or ROOT/genres_original."""
    for candidate in (root, root / "genres", root / "genres_original"):
        if (candidate / GENRES[0]).is_dir():
            return candidate
    return root


def _listed(split_dir: Path) -> list[tuple[str, str]]:
    """(relative path as listed, split) for every line of the three split files."""
    out = []
    for split, fname in SPLIT_FILES.items():
        path = require_file(split_dir / fname, "a GTZAN fault-filtered split file")
        out += [(line.strip(), split) for line in path.read_text().splitlines() if line.strip()]
    return out


class Gtzan:
    """The `gtzan` adapter."""

    name = "gtzan"
    help = (
        "GTZAN genres (get it from http://marsyas.info/downloads/datasets.html; fault-filtered split files "
        "from github.com/coreyker/dnn-mgr/tree/master/gtzan)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --split-dir."""
        add_root(parser, "the genre folders (blues/, classical/, ...) or their parent")
        parser.add_argument(
            "--split-dir",
            type=path_arg,
            help="folder with {train,valid,test}_filtered.txt (fault-filtered split); "
            "without it, all 1,000 clips with a seeded split",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """The listed (or all) clips whose audio is present, .wav or .au."""
        folder = genre_folder(args.root)
        finder = AudioFinder()
        if args.split_dir is not None:
            listed = _listed(args.split_dir)
        else:
            listed = [(f"{g}/{g}.{i:05d}.wav", None) for g in GENRES for i in range(100)]
        items, missing = [], []
        for rel, split in listed:
            genre, stem = rel.split("/")[0], Path(rel).stem
            if genre not in GENRES:
                raise PrepareError(f"{rel}: {genre!r} is not a GTZAN genre")
            path = finder.find(*(folder / genre / f"{stem}{ext}" for ext in _EXTENSIONS))
            if path is None:
                missing.append(rel)
                continue
            items.append(
                Item(path=str(path), clip_id=stem, labels={"genre": GENRES.index(genre)}, split=split)
            )
        tasks = {"genre": {"kind": "single", "classes": list(GENRES)}}
        source = {
            "adapter": self.name,
            "root": str(folder),
            "split": "fault-filtered" if args.split_dir else "seeded",
            "files": {"split_dir": str(args.split_dir)} if args.split_dir else {},
        }
        return finish(self.name, tasks, items, missing, source)
