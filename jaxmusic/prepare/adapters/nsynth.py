"""NSynth (Engel et al. 2017): 305,979 four-second notes at 16 kHz, official splits.

Obtain the json/wav archives from https://magenta.tensorflow.org/datasets/nsynth
(nsynth-train.jsonwav.tar.gz, nsynth-valid..., nsynth-test...), unpacked side by side.

Layout read (`--root`: the dataset folder, or the folder above it):

    nsynth-{train,valid,test}/examples.json    {note_str: {"pitch", "instrument_family",
                                                 "instrument_family_str", "instrument_source",
                                                 "qualities", ...}}
    nsynth-{train,valid,test}/audio/<note_str>.wav

Tasks: `instrument_family` (single, 11 classes, NSynth's own indices), `pitch` (single:
MIDI 21-108, the 88 piano keys, as HEAR's nsynth_pitch does, notes outside that range
left out and counted in the manifest's source; or `--pitch-classes 128`, all MIDI
pitches, nothing left out), `instrument_source` (single: acoustic, electronic,
synthetic) and `qualities` (multi, NSynth's 10 note qualities). clip_id is the note_str.

Splits: the official nsynth-train / nsynth-valid / nsynth-test (289,205 / 12,678 / 4,096
notes; `--splits` picks some of them).
"""

from __future__ import annotations

import argparse
import json

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    add_root,
    finish,
    locate,
    require_file,
    split_info,
)

FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
)  # fmt: skip
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic", "nonlinear_env",
    "percussive", "reverb", "tempo-synced",
)  # fmt: skip
PIANO_RANGE = (21, 108)  # MIDI A0..C8
SPLITS = ("train", "valid", "test")
ORIGIN = "NSynth comes from https://magenta.tensorflow.org/datasets/nsynth (the json/wav archives)"


def pitch_classes(count: int) -> tuple[int, list[int]]:
    """(lowest MIDI pitch, the MIDI pitches that are classes) for 88 or 128 classes."""
    lo, hi = PIANO_RANGE if count == 88 else (0, 127)
    return lo, list(range(lo, hi + 1))


class NSynth:
    """The `nsynth` adapter."""

    name = "nsynth"
    help = (
        "NSynth notes: instrument family, pitch, source, qualities "
        "(get the json/wav archives from https://magenta.tensorflow.org/datasets/nsynth)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --pitch-classes, --splits."""
        add_root(parser, "nsynth-train/, nsynth-valid/, nsynth-test/ (each examples.json + audio/)")
        parser.add_argument(
            "--pitch-classes",
            type=int,
            choices=(88, 128),
            default=88,
            help="88: MIDI 21-108, notes outside left out (default); 128: all MIDI pitches",
        )
        parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """Every note of the chosen splits, in examples.json order."""
        lo, pitches = pitch_classes(args.pitch_classes)
        finder = AudioFinder()
        items, missing, files = [], [], {}
        out_of_range = 0
        root = locate(
            args.root, f"nsynth-{args.splits[0]}", f"NSynth's nsynth-{args.splits[0]}/ folder", ORIGIN
        )
        for split in args.splits:
            folder = root / f"nsynth-{split}"
            meta = require_file(folder / "examples.json", f"NSynth's nsynth-{split}/examples.json", ORIGIN)
            files[split] = str(meta)
            for note_str, ex in json.loads(meta.read_text()).items():
                if not lo <= ex["pitch"] < lo + len(pitches):
                    out_of_range += 1
                    continue
                path = finder.find(folder / "audio" / f"{note_str}.wav")
                if path is None:
                    missing.append(f"nsynth-{split}/audio/{note_str}.wav")
                    continue
                labels = {
                    "instrument_family": int(ex["instrument_family"]),
                    "pitch": int(ex["pitch"]) - lo,
                    "instrument_source": int(ex["instrument_source"]),
                    "qualities": [i for i, q in enumerate(ex["qualities"]) if q],
                }
                items.append(Item(path=str(path), clip_id=note_str, labels=labels, split=split))
        tasks = {
            "instrument_family": {"kind": "single", "classes": list(FAMILIES)},
            "pitch": {"kind": "single", "classes": [str(p) for p in pitches]},
            "instrument_source": {"kind": "single", "classes": list(SOURCES)},
            "qualities": {"kind": "multi", "classes": list(QUALITIES)},
        }
        source = {
            "adapter": self.name,
            "root": str(root),
            "files": files,
            "pitch_classes": args.pitch_classes,
            "left_out_pitch_out_of_range": out_of_range,
            **split_info(
                "official", "NSynth's official nsynth-train/valid/test (289,205/12,678/4,096 notes)"
            ),
        }
        return finish(self.name, tasks, items, missing, source)
