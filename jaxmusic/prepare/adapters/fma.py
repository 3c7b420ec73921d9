"""FMA (Defferrard et al. 2017, Free Music Archive): 30-second clips, genre, official split.

Obtain fma_metadata.zip and fma_small.zip (or fma_medium.zip, fma_large.zip) from
https://github.com/mdeff/fma, unzipped side by side.

Layout read (`--root`: the folder holding both, or the folder above it):

    fma_metadata/tracks.csv   three header rows: the first two name each column as
                              (group, field), e.g. ('set', 'split'), ('set', 'subset'),
                              ('track', 'genre_top'), ('track', 'genres_all'); the third
                              holds "track_id", the first column of every data row
    fma_metadata/genres.csv   genre_id, #tracks, parent, title, top_level (for --genres-all)
    fma_<subset>/<NNN>/<NNNNNN>.mp3
                              the 6-digit zero-padded track id, in the folder of its first
                              3 digits (`--audio-dir` names another folder, e.g. fma_full/)

Subsets (`--subset`): small, medium, large; membership is cumulative (small is in
medium, medium in large), as tracks.csv's ('set', 'subset') column records the smallest
subset a track is in.

Tasks: `genre` (single): the track's top-level genre ('track', 'genre_top'), classes
those of the subset, sorted (8 in small, 16 in medium and large); tracks without a top
genre are left out and counted in the manifest's source (none in small and medium, about
half of large). With `--genres-all`, also `genres_all` (multi): every genre of the track
and its ancestors ('track', 'genres_all'), named by genres.csv's titles, in genre-id
order. clip_id is the 6-digit track id.

Splits: the official one, tracks.csv's ('set', 'split') column (training / validation /
test, read as train / valid / test). A complete copy: small 8,000 tracks (6,400 / 800 /
800), medium 25,000 (19,922 / 2,573 / 2,505), large 106,574 (84,353 / 10,958 / 11,263),
of which large's tracks without a top genre are left out.
"""

from __future__ import annotations

import argparse
import ast
import csv
from pathlib import Path

from jaxmusic.prepare.adapters.base import (
    AudioFinder,
    DatasetItems,
    Item,
    PrepareError,
    add_root,
    class_index,
    finish,
    locate,
    path_arg,
    read_rows,
    require_file,
    split_info,
)

ORIGIN = "FMA comes from https://github.com/mdeff/fma (fma_metadata.zip and fma_<subset>.zip)"
SUBSETS = ("small", "medium", "large")
SPLITS = {"training": "train", "validation": "valid", "test": "test"}
COLUMNS = {
    "split": ("set", "split"),
    "subset": ("set", "subset"),
    "genre_top": ("track", "genre_top"),
    "genres_all": ("track", "genres_all"),
}


def audio_name(track_id: int) -> str:
    """FMA's file of a track: "<NNN>/<NNNNNN>.mp3"."""
    tid = f"{track_id:06d}"
    return f"{tid[:3]}/{tid}.mp3"


def read_tracks(path: Path) -> list[dict[str, str]]:
    """Per track: track_id, split, subset, genre_top, genres_all, from tracks.csv's
    three-row header (the pandas MultiIndex the FMA code reads with header=[0, 1])."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            top, sub, third = next(reader), next(reader), next(reader)
        except StopIteration:
            raise PrepareError(f"{path}: not FMA's tracks.csv (fewer than 3 header rows)") from None
        pairs = [(t.strip(), s.strip()) for t, s in zip(top, sub, strict=False)]
        index = {}
        for name, pair in COLUMNS.items():
            if pair not in pairs:
                raise PrepareError(f"{path}: not FMA's tracks.csv (no column {pair})")
            index[name] = pairs.index(pair)
        if not third or third[0].strip() != "track_id":
            raise PrepareError(f"{path}: not FMA's tracks.csv (third header row starts {third[:1]})")
        out = []
        for row in reader:
            if not row or not row[0].strip():
                continue
            rec = {name: row[i].strip() if i < len(row) else "" for name, i in index.items()}
            rec["track_id"] = row[0].strip()
            out.append(rec)
    return out


def parse_ids(text: str) -> list[int]:
    """A genre-id list as tracks.csv writes it, e.g. "[21, 811]"."""
    try:
        values = ast.literal_eval(text) if text else []
    except (ValueError, SyntaxError):
        raise PrepareError(f"tracks.csv: {text!r} is not a list of genre ids") from None
    return [int(v) for v in values]


def genre_titles(path: Path) -> dict[int, str]:
    """genre_id -> title from genres.csv (a title shared by two ids gets the id appended)."""
    rows = read_rows(path)
    titles = {int(r["genre_id"]): r["title"] for r in rows}
    seen: dict[str, int] = {}
    for t in titles.values():
        seen[t] = seen.get(t, 0) + 1
    return {g: (t if seen[t] == 1 else f"{t} ({g})") for g, t in titles.items()}


class Fma:
    """The `fma` adapter."""

    name = "fma"
    help = (
        "FMA small/medium/large genre, official split (metadata and audio from https://github.com/mdeff/fma)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """--root, --subset, --genres-all, --metadata, --audio-dir."""
        add_root(parser, "fma_metadata/ and fma_<subset>/ side by side, or their parent")
        parser.add_argument("--subset", choices=SUBSETS, default="small")
        parser.add_argument(
            "--genres-all", action="store_true", help="also a multi-label task over every genre (genres.csv)"
        )
        parser.add_argument(
            "--metadata", type=path_arg, help="the fma_metadata folder (default: found under ROOT)"
        )
        parser.add_argument(
            "--audio-dir", type=path_arg, help="the audio folder (default: fma_<subset> found under ROOT)"
        )

    def items(self, args: argparse.Namespace) -> DatasetItems:
        """The subset's tracks with a top genre whose audio is present."""
        if args.metadata is not None:
            meta_dir = args.metadata
        else:
            meta_dir = (
                locate(args.root, "fma_metadata", "FMA's fma_metadata/ folder", ORIGIN) / "fma_metadata"
            )
        tracks_csv = require_file(meta_dir / "tracks.csv", "FMA's tracks.csv", ORIGIN)
        if args.audio_dir is not None:
            audio_dir = args.audio_dir
        else:
            folder = f"fma_{args.subset}"
            audio_dir = locate(args.root, folder, f"FMA's {folder}/ audio folder", ORIGIN) / folder
        wanted = set(SUBSETS[: SUBSETS.index(args.subset) + 1])
        rows = [r for r in read_tracks(tracks_csv) if r["subset"] in wanted]
        no_genre = sum(not r["genre_top"] for r in rows)
        rows = [r for r in rows if r["genre_top"]]
        classes = sorted({r["genre_top"] for r in rows})
        index = class_index(classes)
        tasks: dict[str, dict] = {"genre": {"kind": "single", "classes": classes}}
        files = {"tracks": str(tracks_csv)}
        all_index: dict[int, int] = {}
        if args.genres_all:
            genres_csv = require_file(meta_dir / "genres.csv", "FMA's genres.csv", ORIGIN)
            titles = genre_titles(genres_csv)
            used = sorted({g for r in rows for g in parse_ids(r["genres_all"])})
            unknown = [g for g in used if g not in titles]
            if unknown:
                raise PrepareError(f"{tracks_csv}: genre id {unknown[0]} is not in {genres_csv}")
            all_index = {g: i for i, g in enumerate(used)}
            tasks["genres_all"] = {"kind": "multi", "classes": [titles[g] for g in used]}
            files["genres"] = str(genres_csv)
        finder = AudioFinder()
        items, missing = [], []
        for r in rows:
            if r["split"] not in SPLITS:
                raise PrepareError(f"{tracks_csv}: track {r['track_id']} has split {r['split']!r}")
            rel = audio_name(int(r["track_id"]))
            path = finder.find(audio_dir / rel)
            if path is None:
                missing.append(f"{audio_dir.name}/{rel}")
                continue
            labels = {"genre": index[r["genre_top"]]}
            if args.genres_all:
                labels["genres_all"] = sorted(all_index[g] for g in set(parse_ids(r["genres_all"])))
            tid = f"{int(r['track_id']):06d}"
            items.append(Item(path=str(path), clip_id=tid, labels=labels, split=SPLITS[r["split"]]))
        source = {
            "adapter": self.name,
            "root": str(args.root),
            "subset": args.subset,
            "files": files,
            "audio_dir": str(audio_dir),
            "left_out_no_top_genre": no_genre,
            **split_info(
                "official", f"FMA's official split of fma_{args.subset} (tracks.csv's set/split column)"
            ),
        }
        return finish(self.name, tasks, items, missing, source)
