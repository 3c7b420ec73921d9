"""DEAM (Aljanaki, Yang & Soleymani 2017; MediaEval Emotion in Music 2013-2015): 1,802 songs,
static arousal and valence.

Obtain DEAM_audio.zip and DEAM_Annotations.zip from
https://cvml.unige.ch/databases/DEAM/ (also on Kaggle), unzipped side by side.

Layout read (`--root`: the folder holding both, or the folder above it; each may also sit
one level down, e.g. DEAM_audio/MEMD_audio/):

    MEMD_audio/<song_id>.mp3      45-second excerpts (1-2000), full songs (2001-2058)
    annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv
        static_annotations_averaged_songs_2000_2058.csv
                                  song_id, valence_mean, valence_std, arousal_mean, arousal_std
                                  (spaces after the commas)

Tasks `arousal` and `valence` (regression): the song's mean static rating on the 1-9
scale, as annotated. clip_id is the song_id. A complete copy has 1,802 songs (1,744 +
58).

Splits: DEAM has no official split (MediaEval's yearly development/evaluation sets
differ from year to year); a seeded split made by `prepare` (`--seed`).
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
    read_rows,
    split_info,
)

ORIGIN = "DEAM comes from https://cvml.unige.ch/databases/DEAM/ (DEAM_audio.zip, DEAM_Annotations.zip)"
SCALE = (1.0, 9.0)
SONG_LEVEL = Path("annotations", "annotations averaged per song", "song_level")
FILES = ("static_annotations_averaged_songs_1_2000.csv", "static_annotations_averaged_songs_2000_2058.csv")


def _ratings(path: Path) -> list[tuple[str, float, float]]:
    """(song_id, arousal_mean, valence_mean) per row."""
    rows = read_rows(path)
    if rows and not {"song_id", "arousal_mean", "valence_mean"} <= set(rows[0]):
        raise PrepareError(f"{path}: not a DEAM static annotation file (columns {sorted(rows[0])[:5]})")
    return [(str(int(r["song_id"])), float(r["arousal_mean"]), float(r["valence_mean"])) for r in rows]


class Deam:
    """The `deam` adapter."""

    name = "deam"
    help = "DEAM arousal/valence regression, seeded split (get it from https://cvml.unige.ch/databases/DEAM/)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root."""
        add_root(parser, "MEMD_audio/ and annotations/ (DEAM_audio.zip and DEAM_Annotations.zip unzipped)")

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """Every song of the two static annotation files whose audio is present."""
        audio_root = locate(args.root, "MEMD_audio", "DEAM's MEMD_audio/ folder (DEAM_audio.zip)", ORIGIN)
        ann_root = locate(args.root, str(SONG_LEVEL), f"DEAM's {SONG_LEVEL}/ (DEAM_Annotations.zip)", ORIGIN)
        present = [ann_root / SONG_LEVEL / f for f in FILES if (ann_root / SONG_LEVEL / f).is_file()]
        if not present:
            raise FileNotFoundError(
                f"{ann_root / SONG_LEVEL / FILES[0]} not found: expected DEAM's static annotations ({ORIGIN})"
            )
        if len(present) < len(FILES):
            absent = next(f for f in FILES if ann_root / SONG_LEVEL / f not in present)
            warnings.warn(f"deam: no {ann_root / SONG_LEVEL / absent}: its songs are left out", stacklevel=2)
        finder = AudioFinder()
        items, missing = [], []
        for path in present:
            for song_id, arousal, valence in _ratings(path):
                audio = finder.find(audio_root / "MEMD_audio" / f"{song_id}.mp3")
                if audio is None:
                    missing.append(f"MEMD_audio/{song_id}.mp3")
                    continue
                labels = {"arousal": arousal, "valence": valence}
                items.append(Item(path=str(audio), clip_id=song_id, labels=labels))
        tasks = {
            "arousal": {"kind": "regression", "range": list(SCALE)},
            "valence": {"kind": "regression", "range": list(SCALE)},
        }
        source = {
            "adapter": self.name,
            "root": str(audio_root),
            "files": {"static_annotations": [str(p) for p in present]},
            **split_info("seeded", f"{SEEDED_NOTE}; DEAM has no official split"),
        }
        return finish(self.name, tasks, items, missing, source)
