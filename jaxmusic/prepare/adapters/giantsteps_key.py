"""GiantSteps key (Knees et al. 2015): 604 two-minute EDM previews, 24 keys, single-label.

Obtain by cloning https://github.com/GiantSteps/giantsteps-key-dataset and running its
audio_dl.sh (mp3 previews; convert_audio.sh makes .wav). The optional training set is
https://github.com/GiantSteps/giantsteps-mtg-key-dataset (same procedure).

Layout read:

    --root       audio/<id>.LOFI.mp3 (or .LOFI.wav, .mp3, .wav)
                 annotations/key/<id>.LOFI.key           e.g. "Db minor"
    --mtg-root   audio/<id>.LOFI.mp3
                 annotations/annotations.txt             ID<TAB>MANUAL KEY<TAB>C (confidence 0-2)
                 annotations/beatport_metadata.txt       ID<TAB>ARTIST<TAB>... (artists comma-separated)

Task `key` (single): the 24 keys of `synth.KEYS` ("C major", "C minor", "C# major", ...),
enharmonic spellings merged (Db minor is C# minor). clip_id is the Beatport id.

GiantSteps key is a test set only. Splits:

- with `--mtg-root` (the customary protocol: Korzeniowski & Widmer 2018, Castellon et al.
  2021, MARBLE): the 604 tracks are test; the MTG set's tracks annotated with
  confidence 2 and a single key are train/valid, split by artist as Castellon et al.
  do: an artist is valid when int(sha1(lower-cased name)) % 116 >= 100, and every
  collaborator of a valid artist, two hops out, is valid too, so no artist straddles
  train and valid (923 train / 236 valid).
- without it, `--split seeded` (default): the 604 tracks with a seeded split made by
  `prepare` (for quick experiments; not comparable with published figures), or
  `--split test`: all 604 as test, to evaluate a probe trained elsewhere.
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
    read_rows,
    require_file,
)
from jaxmusic.prepare.splits import fixed_bucket
from jaxmusic.prepare.synth import KEYS

_FLATS = {
    "Db": "C#",
    "Eb": "D#",
    "Gb": "F#",
    "Ab": "G#",
    "Bb": "A#",
    "Cb": "B",
    "Fb": "E",
    "E#": "F",
    "B#": "C",
}
# Castellon et al.'s artist hash: 100 of every 116 buckets train, the rest valid.
_ARTIST_BUCKETS, _TRAIN_BUCKETS = 116, 100


def parse_key(text: str) -> int | None:
    """Index into `KEYS` of a key like "Db minor" or "d# major"; None if it is not one key."""
    parts = text.strip().split()
    if len(parts) != 2 or parts[1].lower() not in ("major", "minor"):
        return None
    tonic = parts[0][:1].upper() + parts[0][1:].lower()
    tonic = _FLATS.get(tonic, tonic)
    name = f"{tonic} {parts[1].lower()}"
    return KEYS.index(name) if name in KEYS else None


def _audio(finder: AudioFinder, folder: Path, track_id: str) -> Path | None:
    names = (f"{track_id}.LOFI.mp3", f"{track_id}.LOFI.wav", f"{track_id}.mp3", f"{track_id}.wav")
    return finder.find(*(folder / n for n in names))


def artist_splits(artists_per_track: list[list[str]]) -> dict[str, str]:
    """Artist -> train/valid: hashed buckets, then collaborators of valid artists made valid
    (two passes, so two hops), as in Castellon et al. 2021."""
    split = {}
    for artists in artists_per_track:
        for a in artists:
            bucket = fixed_bucket(a.lower(), _ARTIST_BUCKETS)
            split[a] = "train" if bucket < _TRAIN_BUCKETS else "valid"
    for _ in range(2):
        for artists in artists_per_track:
            if any(split[a] == "valid" for a in artists):
                for a in artists:
                    split[a] = "valid"
    return split


def _mtg_items(mtg_root: Path, finder: AudioFinder) -> tuple[list[Item], list[str], int]:
    """Confident single-key MTG tracks as train/valid items; also the missing and the left out."""
    annotations = require_file(mtg_root / "annotations" / "annotations.txt", "the MTG key annotations")
    metadata = require_file(
        mtg_root / "annotations" / "beatport_metadata.txt", "the MTG key set's beatport_metadata.txt"
    )
    artists = {r["ID"]: [a.strip() for a in r["ARTIST"].split(",")] for r in read_rows(metadata, "\t")}
    split_of = artist_splits(list(artists.values()))
    items, missing, left_out = [], [], 0
    for row in read_rows(annotations, "\t"):
        key = parse_key(row["MANUAL KEY"]) if row.get("C") == "2" and "/" not in row["MANUAL KEY"] else None
        if key is None:
            left_out += 1
            continue
        path = _audio(finder, mtg_root / "audio", row["ID"])
        if path is None:
            missing.append(f"mtg:{row['ID']}.LOFI.mp3")
            continue
        split = "valid" if any(split_of[a] == "valid" for a in artists[row["ID"]]) else "train"
        items.append(Item(path=str(path), clip_id=row["ID"], labels={"key": key}, split=split))
    return items, missing, left_out


class GiantStepsKey:
    """The `giantsteps_key` adapter."""

    name = "giantsteps_key"
    help = (
        "GiantSteps key, 24 keys (github.com/GiantSteps/giantsteps-key-dataset, audio via its audio_dl.sh; "
        "training set: github.com/GiantSteps/giantsteps-mtg-key-dataset)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --mtg-root, --split."""
        add_root(parser, "giantsteps-key-dataset with audio/ and annotations/key/")
        parser.add_argument(
            "--mtg-root",
            type=path_arg,
            help="giantsteps-mtg-key-dataset with audio/ and annotations/: train/valid from it, "
            "the 604 GiantSteps tracks as test (the customary protocol)",
        )
        parser.add_argument(
            "--split",
            choices=("seeded", "test"),
            default="seeded",
            help="without --mtg-root: a seeded split of the 604 tracks, or all of them as test",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """The GiantSteps tracks (and the MTG training tracks) whose audio is present."""
        key_dir = args.root / "annotations" / "key"
        key_files = sorted(key_dir.glob("*.key"))
        if not key_files:
            raise FileNotFoundError(f"{key_dir} has no .key files: is --root a giantsteps-key-dataset clone?")
        finder = AudioFinder()
        test_split = "test" if args.mtg_root or args.split == "test" else None
        items, missing = [], []
        for kf in key_files:
            track_id = kf.name.split(".")[0]
            key = parse_key(kf.read_text())
            if key is None:
                raise PrepareError(f"{kf}: {kf.read_text()!r} is not a key")
            path = _audio(finder, args.root / "audio", track_id)
            if path is None:
                missing.append(f"{track_id}.LOFI.mp3")
                continue
            items.append(Item(path=str(path), clip_id=track_id, labels={"key": key}, split=test_split))
        source = {"adapter": self.name, "root": str(args.root), "files": {"keys": str(key_dir)}}
        if args.mtg_root:
            mtg, mtg_missing, left_out = _mtg_items(args.mtg_root, finder)
            items += mtg
            missing += mtg_missing
            source.update(
                mtg_root=str(args.mtg_root),
                split="mtg-train/valid by artist, giantsteps test",
                mtg_left_out_unsure_or_multiple_keys=left_out,
            )
        else:
            source["split"] = args.split
        tasks = {"key": {"kind": "single", "classes": list(KEYS)}}
        return finish(self.name, tasks, items, missing, source)
