"""Music captions for the language objective: Song Describer or MusicCaps, one item per caption.

Song Describer (Manco et al. 2023; https://zenodo.org/records/10072001, song_describer.csv
and audio.zip): 1,106 captions of 706 MTG-Jamendo tracks.

    song_describer.csv   caption_id, track_id, caption, is_valid_subset, familiarity,
                         artist_id, album_id, path (MTG-Jamendo's, e.g. 48/1021548.mp3), duration
    audio/NN/<track_id>.2min.mp3

MusicCaps (Agostinelli et al. 2023; musiccaps-public.csv from
https://www.kaggle.com/datasets/googleai/musiccaps): 5,521 ten-second YouTube segments.
MusicCaps ships no audio: fetch each segment (ytid, start_s..end_s) yourself, cut to the
segment, and save it under ROOT as `--audio-pattern` says (default "{ytid}.wav"; the
fields {ytid}, {start_s}, {end_s} are filled in).

    musiccaps-public.csv  ytid, start_s, end_s, audioset_positive_labels, aspect_list,
                          caption, author_id, is_balanced_subset, is_audioset_eval

Each item carries its caption; clip_id is the caption_id (Song Describer) or the ytid
(MusicCaps, one caption per segment). No tasks, except with `--aspects K` for MusicCaps:
a multi-label `aspects` task over the K most frequent aspect-list entries.

Splits:
- Song Describer is an evaluation set with no official split. `--split seeded`
  (default): tracks, not captions, split 80/10/10 by a seeded hash, so the captions of one
  song stay together; `--split test`: everything as test. `--valid-subset` keeps only
  the 746 captions its authors validated.
- MusicCaps: is_audioset_eval true is test (2,858 segments), the rest train, of which a
  seeded 10% of segments is valid.
The seed is `prepare`'s `--seed`.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    add_root,
    class_index,
    finish,
    path_arg,
    read_rows,
    require_file,
    seed_of,
    split_info,
)
from jaxmusic.prepare.splits import grouped_split

SEEDED = {"train": 0.8, "valid": 0.1, "test": 0.1}
MUSICCAPS_VALID = {"train": 0.9, "valid": 0.1}


def _true(value: str) -> bool:
    return value.strip().lower() in ("true", "1")


def parse_aspects(text: str) -> list[str]:
    """MusicCaps' aspect_list, a Python list literal, as lower-case strings."""
    try:
        values = ast.literal_eval(text) if text else []
    except (ValueError, SyntaxError):
        return []
    return [str(v).strip().lower() for v in values if str(v).strip()]


def _song_describer(args: argparse.Namespace) -> DatasetItems:
    csv_path = require_file(args.csv or args.root / "song_describer.csv", "song_describer.csv")
    rows = [r for r in read_rows(csv_path) if not args.valid_subset or _true(r.get("is_valid_subset", ""))]
    track_split = (
        grouped_split((r["track_id"] for r in rows), SEEDED, seed_of(args)) if args.split == "seeded" else {}
    )
    finder = AudioFinder()
    items, missing = [], []
    for r in rows:
        # MTG-Jamendo's path, NN/<id>.mp3 with NN the id's last two digits, if the column is absent.
        rel = r.get("path") or f"{int(r['track_id']) % 100:02d}/{r['track_id']}.mp3"
        two_min = rel[: -len(".mp3")] + ".2min.mp3" if rel.endswith(".mp3") else rel
        path = finder.find(args.root / "audio" / two_min, args.root / "audio" / rel, args.root / two_min)
        if path is None:
            missing.append(f"audio/{two_min}")
            continue
        split = track_split.get(r["track_id"], "test")
        items.append(
            Item(path=str(path), clip_id=r["caption_id"], labels={}, caption=r["caption"], split=split)
        )
    source = {
        "adapter": "captions",
        "layout": "songdescriber",
        "root": str(args.root),
        "files": {"captions": str(csv_path)},
        "valid_subset": args.valid_subset,
        **(
            split_info(
                "seeded",
                "seeded 80/10/10 split of tracks (--seed), a track's captions together; "
                "Song Describer has no official split",
            )
            if args.split == "seeded"
            else split_info("official", "every caption as test (Song Describer is an evaluation set)")
        ),
    }
    return finish("song_describer", {}, items, missing, source)


def _musiccaps(args: argparse.Namespace) -> DatasetItems:
    csv_path = require_file(args.csv or args.root / "musiccaps-public.csv", "musiccaps-public.csv")
    rows = read_rows(csv_path)
    train_split = grouped_split(
        (r["ytid"] for r in rows if not _true(r["is_audioset_eval"])), MUSICCAPS_VALID, seed_of(args)
    )
    aspects = [parse_aspects(r.get("aspect_list", "")) for r in rows]
    counts = Counter(a for row_aspects in aspects for a in set(row_aspects))
    classes = [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: args.aspects]]
    index = class_index(classes)
    finder = AudioFinder()
    items, missing = [], []
    for r, row_aspects in zip(rows, aspects, strict=True):
        rel = args.audio_pattern.format(ytid=r["ytid"], start_s=r["start_s"], end_s=r["end_s"])
        path = finder.find(args.root / rel)
        if path is None:
            missing.append(rel)
            continue
        labels = {"aspects": sorted({index[a] for a in row_aspects if a in index})} if classes else {}
        split = "test" if _true(r["is_audioset_eval"]) else train_split[r["ytid"]]
        items.append(
            Item(path=str(path), clip_id=r["ytid"], labels=labels, caption=r["caption"], split=split)
        )
    tasks = {"aspects": {"kind": "multi", "classes": classes}} if classes else {}
    source = {
        "adapter": "captions",
        "layout": "musiccaps",
        "root": str(args.root),
        "files": {"captions": str(csv_path)},
        "audio_pattern": args.audio_pattern,
        "aspects": args.aspects,
        **split_info(
            "official+seeded",
            "is_audioset_eval segments test (official); a seeded 10% of the rest valid (--seed)",
        ),
    }
    return finish("musiccaps", tasks, items, missing, source)


class Captions:
    """The `captions` adapter."""

    name = "captions"
    help = (
        "music captions: Song Describer (https://zenodo.org/records/10072001) or MusicCaps "
        "(https://www.kaggle.com/datasets/googleai/musiccaps; audio fetched by you)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--layout, --root, --csv, --split, --valid-subset, --audio-pattern, --aspects."""
        parser.add_argument("--layout", choices=("songdescriber", "musiccaps"), required=True)
        add_root(parser, "song_describer.csv + audio/ (songdescriber), or the segments' audio (musiccaps)")
        parser.add_argument("--csv", type=path_arg, help="the caption file (default: ROOT/song_describer.csv "
                            "or ROOT/musiccaps-public.csv)")  # fmt: skip
        parser.add_argument(
            "--split",
            choices=("seeded", "test"),
            default="seeded",
            help="songdescriber: split tracks 80/10/10 by seed, or all as test",
        )
        parser.add_argument(
            "--valid-subset", action="store_true", help="songdescriber: only the validated captions"
        )
        parser.add_argument(
            "--audio-pattern",
            default="{ytid}.wav",
            help="musiccaps: each segment's file under ROOT ({ytid}, {start_s}, {end_s} are filled in)",
        )
        parser.add_argument(
            "--aspects",
            type=int,
            default=0,
            help="musiccaps: a multi-label task over the K commonest aspects",
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """One item per caption of the chosen layout."""
        return _song_describer(args) if args.layout == "songdescriber" else _musiccaps(args)
