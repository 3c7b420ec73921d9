"""GiantSteps tempo (Knees et al. 2015): 664 two-minute EDM previews, global tempo in BPM.

Obtain by cloning https://github.com/GiantSteps/giantsteps-tempo-dataset and running its
audio_dl.sh (mp3 previews from Beatport / the JKU mirror, into audio/). mirdata's
giantsteps_tempo keeps the same clone as giantsteps-tempo-dataset-<commit>/ with audio/
beside it; both layouts are read.

Layout read (`--root`: the clone, or the folder above it, e.g. mirdata's GiantSteps_tempo/):

    annotations/tempo/<id>.LOFI.bpm       the original (v1) tempo: one number, e.g. "128"
    annotations_v2/tempo/<id>.LOFI.bpm    the crowd-corrected v2 tempo (Schreiber & Müller 2018)
    audio/<id>.LOFI.mp3                   in the clone, or beside it (mirdata)

Task `tempo` (regression, BPM, unit "bpm"): v2 by default (`--tempo-version v1` for the
original; with no v2 annotations the v1 ones are read, with a warning). A file that holds
no positive number is left out and counted in the manifest's source. clip_id is the
Beatport id. 664 tracks.

Splits: GiantSteps tempo has no official split (it is a test set). `--split seeded`
(default): a seeded split made by `prepare`; `--split test`: all tracks as test, to
evaluate a probe trained elsewhere.
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
    add_root,
    finish,
    split_info,
)

ORIGIN = (
    "GiantSteps tempo comes from github.com/GiantSteps/giantsteps-tempo-dataset (audio via its audio_dl.sh)"
)
VERSIONS = {"v1": "annotations/tempo", "v2": "annotations_v2/tempo"}


def dataset_folder(root: Path) -> Path:
    """ROOT, or the subfolder of ROOT, that holds annotations/tempo/ or annotations_v2/tempo/."""
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} does not exist ({ORIGIN})")
    for folder in (root, *sorted(c for c in root.iterdir() if c.is_dir())):
        if any((folder / v).is_dir() for v in VERSIONS.values()):
            return folder
    raise FileNotFoundError(
        f"no annotations_v2/tempo/ or annotations/tempo/ in {root} or its subfolders ({ORIGIN})"
    )


def read_bpm(path: Path) -> float | None:
    """The tempo in a .bpm file, or None when it holds no positive number."""
    try:
        bpm = float(path.read_text(encoding="utf-8").split()[0])
    except (ValueError, IndexError):
        return None
    return bpm if bpm > 0 else None


class GiantStepsTempo:
    """The `giantsteps_tempo` adapter."""

    name = "giantsteps_tempo"
    help = (
        "GiantSteps tempo, BPM regression (github.com/GiantSteps/giantsteps-tempo-dataset, "
        "audio via its audio_dl.sh)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --tempo-version, --split."""
        add_root(parser, "giantsteps-tempo-dataset with annotations_v2/tempo/ and audio/, or its parent")
        parser.add_argument(
            "--tempo-version",
            choices=tuple(VERSIONS),
            help="v2 (default: the corrected annotations) or v1 (the original ones)",
        )
        parser.add_argument(
            "--split",
            choices=("seeded", "test"),
            default="seeded",
            help="a seeded split of the tracks, or all of them as test",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """Every annotated track whose audio is present."""
        folder = dataset_folder(args.root)
        version = args.tempo_version or "v2"
        ann_dir = folder / VERSIONS[version]
        if not any(ann_dir.glob("*.bpm")):
            if args.tempo_version is None and any((folder / VERSIONS["v1"]).glob("*.bpm")):
                warnings.warn(
                    f"giantsteps_tempo: no v2 annotations in {ann_dir}: reading the original (v1) ones",
                    stacklevel=2,
                )
                version, ann_dir = "v1", folder / VERSIONS["v1"]
            else:
                raise FileNotFoundError(f"no <id>.LOFI.bpm files in {ann_dir} ({ORIGIN})")
        audio_dirs = (folder / "audio", folder.parent / "audio")
        finder = AudioFinder()
        split = "test" if args.split == "test" else None
        items, missing, left_out = [], [], 0
        for f in sorted(ann_dir.glob("*.bpm"), key=lambda p: (len(p.name), p.name)):
            track_id = f.name.split(".")[0]
            bpm = read_bpm(f)
            if bpm is None:
                left_out += 1
                continue
            names = (f"{track_id}.LOFI.mp3", f"{track_id}.LOFI.wav", f"{track_id}.mp3", f"{track_id}.wav")
            path = finder.find(*(d / n for d in audio_dirs for n in names))
            if path is None:
                missing.append(f"audio/{track_id}.LOFI.mp3")
                continue
            items.append(Item(path=str(path), clip_id=track_id, labels={"tempo": bpm}, split=split))
        tasks = {"tempo": {"kind": "regression", "unit": "bpm"}}
        source = {
            "adapter": self.name,
            "root": str(folder),
            "files": {"tempo": str(ann_dir)},
            "tempo_version": version,
            "left_out_no_tempo": left_out,
            **(
                split_info("official", "every track as test (GiantSteps tempo is a test set)")
                if split
                else split_info("seeded", f"{SEEDED_NOTE}; GiantSteps tempo has no official split")
            ),
        }
        return finish(self.name, tasks, items, missing, source)
