"""GiantSteps key (Knees et al. 2015): 604 two-minute EDM previews, 24 keys, single-label.

Obtain by cloning https://github.com/GiantSteps/giantsteps-key-dataset and running its
audio_dl.sh (mp3 previews; convert_audio.sh makes .wav), or as the GiantSteps+ release on
Zenodo (https://zenodo.org/record/1095691: audio.zip, keys.zip; what mirdata's
giantsteps_key downloads). The optional training set is
https://github.com/GiantSteps/giantsteps-mtg-key-dataset (same procedure).

Layouts read (`--root` is the dataset folder or the folder above it):

    --root       GitHub clone:
                 audio/<id>.LOFI.mp3 (or .LOFI.wav, .mp3, .wav)
                 annotations/key/<id>.LOFI.key           e.g. "Db minor"
                 or Zenodo GiantSteps+ (mirdata's layout; meta/ and jams/ are not read):
                 audio/<id> <Artist> - <Title>.mp3
                 keys_gs+/<id> <Artist> - <Title>.txt    e.g. "D major"
    --mtg-root   audio/<id>.LOFI.mp3
                 annotations/annotations.txt             ID<TAB>MANUAL KEY<TAB>C (confidence 0-2)
                 annotations/beatport_metadata.txt       ID<TAB>ARTIST<TAB>... (artists comma-separated)

Task `key` (single): the 24 keys of `synth.KEYS` ("C major", "C minor", "C# major", ...),
enharmonic spellings merged (Db minor is C# minor); a key file holding no single major or
minor key is left out and counted in the manifest's source. clip_id is the Beatport id.
604 tracks in the GitHub release, 600 in GiantSteps+.

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
import warnings
from pathlib import Path

from jaxmusic.prepare.adapters.base import (
    SEEDED_NOTE,
    AudioFinder,
    DatasetItems,
    Item,
    add_root,
    finish,
    path_arg,
    read_rows,
    require_file,
    split_info,
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


ORIGIN = (
    "GiantSteps key comes from github.com/GiantSteps/giantsteps-key-dataset (audio via audio_dl.sh) "
    "or https://zenodo.org/record/1095691 (GiantSteps+)"
)
MTG_ORIGIN = "from github.com/GiantSteps/giantsteps-mtg-key-dataset"
_LAYOUTS = {"annotations/key": "github", "keys_gs+": "zenodo"}


def dataset_folder(root: Path) -> tuple[Path, str]:
    """(the dataset folder, "github" or "zenodo"): ROOT or a subfolder of it holding
    annotations/key/ (GitHub clone) or keys_gs+/ (Zenodo GiantSteps+)."""
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} does not exist ({ORIGIN})")
    for folder in (root, *sorted(c for c in root.iterdir() if c.is_dir())):
        for marker, layout in _LAYOUTS.items():
            if (folder / marker).is_dir():
                return folder, layout
    raise FileNotFoundError(
        f"no annotations/key/ (GitHub clone) or keys_gs+/ (Zenodo GiantSteps+) in {root} or its subfolders "
        f"({ORIGIN})"
    )


def key_files(folder: Path, layout: str) -> list[tuple[str, Path, str]]:
    """(track id, key file, audio file name) per annotated track, in id order."""
    if layout == "github":
        files = sorted((folder / "annotations" / "key").glob("*.key"))
        out = [(f.name.split(".")[0], f, f"{f.name.split('.')[0]}.LOFI.mp3") for f in files]
    else:  # "<id> <Artist> - <Title>.txt", audio of the same name
        files = sorted((folder / "keys_gs+").glob("*.txt"))
        out = [(f.name.split(" ", 1)[0].split(".")[0], f, f"{f.stem}.mp3") for f in files]
    if not out:
        marker = "annotations/key/*.key" if layout == "github" else "keys_gs+/*.txt"
        raise FileNotFoundError(f"no {marker} files in {folder} ({ORIGIN})")
    return sorted(out, key=lambda t: (len(t[0]), t[0]))


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
    annotations = require_file(
        mtg_root / "annotations" / "annotations.txt", "the MTG key annotations", MTG_ORIGIN
    )
    metadata = require_file(
        mtg_root / "annotations" / "beatport_metadata.txt",
        "the MTG key set's beatport_metadata.txt",
        MTG_ORIGIN,
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
        folder, layout = dataset_folder(args.root)
        finder = AudioFinder()
        test_split = "test" if args.mtg_root or args.split == "test" else None
        items, missing, not_a_key = [], [], []
        for track_id, kf, audio_name in key_files(folder, layout):
            key = parse_key(kf.read_text(encoding="utf-8").strip())
            if key is None:
                not_a_key.append(track_id)
                continue
            if layout == "github":
                path = _audio(finder, folder / "audio", track_id)
            else:
                path = finder.find(
                    folder / "audio" / audio_name, (folder / "audio" / audio_name).with_suffix(".wav")
                )
            if path is None:
                missing.append(f"audio/{audio_name}")
                continue
            items.append(Item(path=str(path), clip_id=track_id, labels={"key": key}, split=test_split))
        if not_a_key:
            warnings.warn(
                f"giantsteps_key: {len(not_a_key)} key files hold no single major or minor key and are "
                f"left out (first: {not_a_key[0]})",
                stacklevel=2,
            )
        key_dir = folder / ("annotations/key" if layout == "github" else "keys_gs+")
        source = {
            "adapter": self.name,
            "root": str(folder),
            "layout": layout,
            "files": {"keys": str(key_dir)},
            "left_out_not_a_single_key": len(not_a_key),
        }
        if args.mtg_root:
            mtg, mtg_missing, left_out = _mtg_items(args.mtg_root, finder)
            items += mtg
            missing += mtg_missing
            source.update(
                mtg_root=str(args.mtg_root),
                mtg_left_out_unsure_or_multiple_keys=left_out,
                **split_info(
                    "official",
                    "customary protocol (Korzeniowski & Widmer 2018, Castellon et al. 2021): GiantSteps key "
                    "is test, the MTG key set train/valid by artist",
                ),
            )
        elif args.split == "test":
            source.update(split_info("official", "every track as test (GiantSteps key is a test set)"))
        else:
            source.update(split_info("seeded", f"{SEEDED_NOTE}; GiantSteps key is a test set only"))
        tasks = {"key": {"kind": "single", "classes": list(KEYS)}}
        return finish(self.name, tasks, items, missing, source)
