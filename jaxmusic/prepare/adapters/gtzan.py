"""GTZAN genre (Tzanetakis & Cook 2002): 1,000 30-second clips, 10 genres, single-label.

Obtain from http://marsyas.info/downloads/datasets.html (genres.tar.gz, .au files) or a
mirror with .wav files (e.g. Kaggle's "GTZAN Dataset - Music Genre Classification",
genres_original/). The fault-filtered split files come from
https://github.com/coreyker/dnn-mgr/tree/master/gtzan (also in minzwon/sota-music-tagging-models).

Layout read (`--root`: the folder holding the genre folders, as the Marsyas archive's
genres/, Kaggle's Data/genres_original/ or mirdata's gtzan_genre/genres/; or the folder
above it, holding genres/, genres_original/ or Data/genres_original/):

    <genre>/<genre>.000NN.wav   (or .au)

A partial copy (some genre folders absent) is prepared with a warning naming the absent
genres; the task keeps all 10 classes.

Task `genre` (single): blues, classical, country, disco, hiphop, jazz, metal, pop,
reggae, rock. clip_id is the file stem, e.g. "blues.00012".

Splits: with `--split-dir`, the fault-filtered split of Kereliuk et al. 2015 / Sturm
(train_filtered.txt, valid_filtered.txt, test_filtered.txt, lines like
"blues/blues.00012.wav"): 443 / 197 / 290 clips, the other 70 left out. Without it, all
1,000 clips with a seeded split made by `prepare` (not comparable with published figures).
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
    path_arg,
    require_file,
    split_info,
)

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt", "test": "test_filtered.txt"}
_EXTENSIONS = (".wav", ".au")
FILTERED_NOTE = "fault-filtered split of Kereliuk et al. 2015 / Sturm (443/197/290, 70 clips left out)"


ORIGIN = "GTZAN comes from http://marsyas.info/downloads/datasets.html (genres.tar.gz)"
_FOLDERS = ("", "genres", "genres_original", "Data/genres_original", "gtzan_genre/genres")


def _genres_in(folder: Path) -> list[str]:
    return [g for g in GENRES if (folder / g).is_dir()]


def genre_folder(root: Path) -> Path:
    """The folder whose subfolders are the genres: ROOT, or ROOT/genres, ROOT/genres_original,
    ROOT/Data/genres_original (Kaggle), ROOT/gtzan_genre/genres (mirdata), whichever holds
    the most genre folders; a one-line FileNotFoundError when none holds any."""
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} does not exist: expected GTZAN's genre folders ({ORIGIN})")
    found = [(len(_genres_in(root / f)), -i, root / f) for i, f in enumerate(_FOLDERS)]
    count, _, folder = max(found)
    if count == 0:
        raise FileNotFoundError(
            f"no GTZAN genre folders (blues/, classical/, ...) in {root} or its genres/, genres_original/ "
            f"or Data/genres_original/ ({ORIGIN})"
        )
    return folder


def _listed(split_dir: Path) -> list[tuple[str, str]]:
    """(relative path as listed, split) for every line of the three split files."""
    out = []
    for split, fname in SPLIT_FILES.items():
        path = require_file(
            split_dir / fname,
            "a GTZAN fault-filtered split file",
            "from github.com/coreyker/dnn-mgr/tree/master/gtzan",
        )
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
        present = _genres_in(folder)
        absent = [g for g in GENRES if g not in present]
        if absent:
            warnings.warn(
                f"gtzan: {len(absent)} of the 10 genre folders are absent from {folder} "
                f"({', '.join(absent)}): preparing the {len(present)} present; the task keeps all 10 classes",
                stacklevel=2,
            )
        finder = AudioFinder()
        if args.split_dir is not None:
            listed = _listed(args.split_dir)
        else:  # a partial copy's absent genres are warned about above, not listed as missing
            listed = [(f"{g}/{g}.{i:05d}.wav", None) for g in present for i in range(100)]
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
            "files": {"split_dir": str(args.split_dir)} if args.split_dir else {},
            "absent_genres": absent,
            **(
                split_info("filtered", FILTERED_NOTE)
                if args.split_dir
                else split_info("seeded", f"{SEEDED_NOTE}; GTZAN has no official split")
            ),
        }
        return finish(self.name, tasks, items, missing, source)
