"""Tiny stand-ins for public datasets, in their distributors' exact layouts and formats.

Audio is generated (short tones, each clip its own pitch) and metadata files are written
the way the distributors write them (quoting, delimiters, CRLF, header spellings), with a
few deliberately missing audio files. Each builder returns what the tests need to check
against: per clip id, the expected split and labels.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
SECONDS = 0.8


def tone(path: Path, index: int, seconds: float = SECONDS, rate: int = RATE) -> None:
    """A short tone whose pitch depends on `index`, in the format the extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * (220.0 + 37.0 * index) * t)
    fmt = {".mp3": ("MP3", "MPEG_LAYER_III"), ".au": ("AU", "PCM_16"), ".wav": ("WAV", "PCM_16")}[path.suffix]
    sf.write(path, x, rate, format=fmt[0], subtype=fmt[1])


def _write_csv(path: Path, header: list[str], rows: list[list], **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, **kw)
        w.writerow(header)
        w.writerows(rows)


# ----------------------------------------------------------------------------- MagnaTagATune

MTAT_TAGS = [f"tag{i:03d}" for i in range(188)]
MTAT_TAGS[:6] = ["no voice", "singer", "classical", "guitar", "rock", "techno"]


def mtat(root: Path) -> dict:
    """annotations_final.csv (188 tags, every field quoted, tab-separated) + mp3 folders.

    Column c is set on the first n(c) clips, n falling from 8 to 0 along a permutation of
    the columns, so the top 50 are neither the first 50 columns nor in column order.
    Clip "30" (folder e) has no mp3. Returns clip_id -> (mp3_path, 188 zeros/ones).
    """
    rank = [(c * 7) % 188 for c in range(188)]
    count = [max(0, 8 - r // 8) for r in rank]
    folders = ["0", "5", "b", "c", "c", "d", "f", "e"]
    clips = {}
    for k, folder in enumerate(folders):
        clip_id = str(2 + 4 * k)  # MTAT's ids are sparse
        clips[clip_id] = (
            f"{folder}/artist_{k}-album-01-song-{30 * k}-{30 * k + 29}.mp3",
            [int(k < count[c]) for c in range(188)],
        )
    header = ["clip_id", *MTAT_TAGS, "mp3_path"]
    rows = [[cid, *map(str, tags), path] for cid, (path, tags) in clips.items()]
    _write_csv(root / "annotations_final.csv", header, rows, delimiter="\t", quoting=csv.QUOTE_ALL)
    for k, (path, _) in enumerate(clips.values()):
        if not path.startswith("e/"):
            tone(root / path, k)
    return clips


def mtat_won_split(folder: Path, clips: dict, order: list[str]) -> dict[str, str]:
    """Won et al.'s train/valid/test.npy ("row<TAB>path" strings) and tags.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(clips)
    assignment = {"train": ids[0:3], "valid": ids[3:4], "test": ids[5:8]}  # clip ids[4] left out
    for split, chosen in assignment.items():
        entries = [f"{ids.index(c)}\t{clips[c][0]}" for c in chosen]
        np.save(folder / f"{split}.npy", np.array(entries))
    np.save(folder / "tags.npy", np.array(order))
    return {c: s for s, chosen in assignment.items() for c in chosen}


def mtat_pons_split(folder: Path, clips: dict) -> dict[str, str]:
    """musicnn-training's {train,val,test}_gt_mtt.tsv: "clip_id<TAB>[50 floats]"."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(clips)
    assignment = {"train": ids[0:2], "val": ids[3:5], "test": ids[5:8]}  # ids[2] left out
    for split, chosen in assignment.items():
        lines = [f"{c}\t{json.dumps([0.0] * 50)}" for c in chosen]
        (folder / f"{split}_gt_mtt.tsv").write_text("\n".join(lines) + "\n")
    return {c: ("valid" if s == "val" else s) for s, chosen in assignment.items() for c in chosen}


# ----------------------------------------------------------------------------- GTZAN

GTZAN_SPLITS = {
    "train": ["blues/blues.00000.wav", "rock/rock.00099.wav", "classical/classical.00003.wav"],
    "valid": ["blues/blues.00001.wav", "jazz/jazz.00054.wav"],  # jazz.00054 has no audio
    "test": ["classical/classical.00005.wav", "reggae/reggae.00010.wav"],
}


def gtzan(root: Path) -> Path:
    """genres/<genre>/<genre>.000NN.{au,wav} and the fault-filtered split files; returns the split dir."""
    listed = [p for paths in GTZAN_SPLITS.values() for p in paths if "jazz" not in p]
    for k, rel in enumerate([*listed, "pop/pop.00042.wav"]):  # pop.00042: not in the filtered split
        ext = ".au" if k % 2 else ".wav"  # the original archive's .au and a mirror's .wav
        tone(root / "genres" / Path(rel).with_suffix(ext), k)
    split_dir = root / "splits"
    split_dir.mkdir()
    for split, paths in GTZAN_SPLITS.items():
        (split_dir / f"{split}_filtered.txt").write_text("".join(p + "\n" for p in paths))
    return split_dir


# ----------------------------------------------------------------------------- NSynth


def nsynth(root: Path) -> dict[str, dict]:
    """nsynth-{train,valid,test}/examples.json + audio/<note_str>.wav; returns examples by id."""
    sources = ["acoustic", "electronic", "synthetic"]
    plan = {
        "train": [
            ("bass", 0, 21, 25),
            ("guitar", 1, 60, 50),
            ("keyboard", 0, 108, 127),
            ("mallet", 2, 9, 75),
        ],
        "valid": [("vocal", 0, 64, 100), ("guitar", 2, 127, 25)],
        "test": [("keyboard", 1, 40, 75), ("bass", 2, 33, 50)],
    }
    family_index = {"bass": 0, "guitar": 3, "keyboard": 4, "mallet": 5, "vocal": 10}
    out = {}
    k = 0
    for split, notes in plan.items():
        examples = {}
        for family, src, pitch, velocity in notes:
            note_str = f"{family}_{sources[src]}_{k:03d}-{pitch:03d}-{velocity:03d}"
            qualities = [int((k + q) % 3 == 0) for q in range(10)]
            examples[note_str] = {
                "note": 1000 + k,
                "note_str": note_str,
                "instrument": k,
                "instrument_str": f"{family}_{sources[src]}_{k:03d}",
                "pitch": pitch,
                "velocity": velocity,
                "sample_rate": 16000,
                "qualities": qualities,
                "qualities_str": [],
                "instrument_family": family_index[family],
                "instrument_family_str": family,
                "instrument_source": src,
                "instrument_source_str": sources[src],
            }
            if not (split == "test" and family == "bass"):  # one note without audio
                tone(root / f"nsynth-{split}" / "audio" / f"{note_str}.wav", k)
            out[note_str] = {**examples[note_str], "split": split}
            k += 1
        (root / f"nsynth-{split}").mkdir(parents=True, exist_ok=True)
        (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps(examples, indent=4))
    return out


# ----------------------------------------------------------------------------- MTG-Jamendo


def jamendo(audio_root: Path, split_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """split-0/autotagging_top50tags-*.tsv (CRLF, one tag per column) + NN/<id>(.low).mp3."""
    plan = {
        "train": [(214, ["genre---rock", "instrument---guitar"]), (1376256, ["mood/theme---happy"])],
        "validation": [(3524, ["genre---rock", "mood/theme---melodic", "instrument---piano"])],
        "test": [(4882, ["instrument---piano"]), (99999, ["genre---jazz"])],  # 99999: no audio
    }
    split_dir.mkdir(parents=True)
    out = {}
    k = 0
    for split, tracks in plan.items():
        lines = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
        for num, tags in tracks:
            track_id, rel = f"track_{num:07d}", f"{num % 100:02d}/{num}.mp3"
            lines.append("\t".join([track_id, f"artist_{k:06d}", f"album_{k:06d}", rel, "212.4", *tags]))
            if num != 99999:
                audio = rel if k % 2 == 0 else rel.replace(".mp3", ".low.mp3")  # audio-low naming
                tone(audio_root / audio, k)
            out[track_id] = ({"validation": "valid"}.get(split, split), tags)
            k += 1
        (split_dir / f"autotagging_top50tags-{split}.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return out


# ----------------------------------------------------------------------------- GiantSteps key


def sha1_bucket(text: str, buckets: int) -> int:
    """int(sha1(text)) % buckets: how Castellon et al. hash artists into splits."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % buckets


def giantsteps(root: Path) -> dict[str, str]:
    """audio/<id>.LOFI.mp3 + annotations/key/<id>.LOFI.key (no trailing newline); id -> key text."""
    keys = {"1004923": "Db minor", "10089": "C minor", "3424038": "A major", "5377710": "Bb minor"}
    for k, (track_id, key) in enumerate(keys.items()):
        f = root / "annotations" / "key" / f"{track_id}.LOFI.key"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(key)
        if track_id != "5377710":  # no audio
            tone(root / "audio" / f"{track_id}.LOFI.mp3", k)
    return keys


def giantsteps_mtg(root: Path) -> dict[str, tuple[str, str]]:
    """annotations/annotations.txt + beatport_metadata.txt + audio; id -> (key text, split)."""
    valid_artist = next(f"DJ {i}" for i in range(1000) if sha1_bucket(f"dj {i}", 116) >= 100)
    train_artist = next(f"MC {i}" for i in range(1000) if sha1_bucket(f"mc {i}", 116) < 100)
    other_train = next(f"Crew {i}" for i in range(1000) if sha1_bucket(f"crew {i}", 116) < 100)
    tracks = [  # id, manual key, confidence, artists, expected split (None: left out)
        ("5061", "D# minor", "2", f"{train_artist}", "valid"),  # collaborator of a valid artist
        ("5881", "A major", "2", f"{valid_artist}, {train_artist}", "valid"),
        ("7217", "F minor", "1", f"{other_train}", None),  # unsure
        ("10359", "F minor / G# major", "2", f"{other_train}", None),  # two keys
        ("11111", "-", "0", f"{other_train}", None),
        ("22222", "Gb major", "2", f"{other_train}", "train"),
    ]
    ann = ["ID\tMANUAL KEY\tC"] + [f"{t[0]}\t{t[1]}\t{t[2]}" for t in tracks]
    meta = ["ID\tARTIST\tSONG TITLE\tMIX\tLABEL\tBP GENRE\tBP BPM\tBP KEY"] + [
        f"{t[0]}\t{t[3]}\tSong {t[0]}\tOriginal Mix\tLabel\tTechno\t128\tC major" for t in tracks
    ]
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "annotations.txt").write_text("\n".join(ann) + "\n")
    (root / "annotations" / "beatport_metadata.txt").write_text("\n".join(meta) + "\n")
    for k, t in enumerate(tracks):
        tone(root / "audio" / f"{t[0]}.LOFI.mp3", 10 + k)
    return {t[0]: (t[1], t[4]) for t in tracks if t[4]}


# ----------------------------------------------------------------------------- emoMusic


def emomusic(root: Path) -> dict[str, tuple[float, float, str]]:
    """clips_45seconds/<id>.mp3 + annotations/{static_annotations,songs_info}.csv; id -> (a, v, split)."""
    artists = [f"The {a}{b} Band" for a in "abcdefgh" for b in "xyz"]  # letters only survive normalising
    dev_valid = next(a for a in artists if sha1_bucket(a.lower(), 10) >= 8)
    dev_train = next(a for a in artists if sha1_bucket(a.lower(), 10) < 8)
    songs = [  # song_id, artist as written, set, arousal, valence, expected split
        (2, f"  {dev_train.upper()} ", "development", 3.1, 3.0, "train"),  # normalised before hashing
        (3, f"{dev_valid}!", "development", 5.7, 5.5, "valid"),
        (4, "Kevin MacLeod", "evaluation", 4.2, 6.1, "test"),
        (5, "Kevin MacLeod", "evaluation", 7.0, 2.2, "test"),  # no audio
    ]
    static = [[s[0], s[3], 0.9, s[4], 0.7] for s in songs]
    _write_csv(
        root / "annotations" / "static_annotations.csv",
        ["song_id", "mean_arousal", "std_arousal", "mean_valence", "std_valence"],
        static,
    )
    info = [[s[0], f"{s[0]}.mp3", s[1], f"Song {s[0]}", "0.48", "1.33", "Blues", s[2]] for s in songs]
    header = ["song_id", "file_name", "Artist", "Song title", "start of the segment (min.sec)",
              "end of the segment (min.sec)", "Genre", "Mediaeval 2013 set"]  # fmt: skip
    _write_csv(root / "annotations" / "songs_info.csv", header, info)
    for k, s in enumerate(songs[:3]):
        tone(root / "clips_45seconds" / f"{s[0]}.mp3", k)
    return {str(s[0]): (s[3], s[4], s[5]) for s in songs}


# ----------------------------------------------------------------------------- TinySOL

TINYSOL_HEADER = [
    "Path", "Fold ID", "Family", "Instrument (abbr.)", "Instrument (in full)", "Technique (abbr.)",
    "Technique (in full)", "Pitch", "Pitch ID", "Dynamics", "Dynamics ID", "Instance ID",
    "String ID (if applicable)", "Needed digital retuning",
]  # fmt: skip


def tinysol(root: Path) -> dict[str, dict]:
    """TinySOL_metadata.csv + TinySOL/<Path> wavs; stem -> row."""
    notes = [  # family, folder, abbr, full, pitch, midi, dynamics, fold
        ("Brass", "Bass_Tuba", "BTb", "Bass Tuba", "F#1", 30, "pp", 0),
        ("Brass", "Bass_Tuba", "BTb", "Bass Tuba", "C3", 48, "ff", 1),
        ("Strings", "Violin", "Vn", "Violin", "A4", 69, "mf", 2),
        ("Winds", "Flute", "Fl", "Flute", "C4", 60, "mf", 3),
        ("Winds", "Flute", "Fl", "Flute", "A4", 69, "p", 4),
        ("Strings", "Violin", "Vn", "Violin", "G3", 55, "ff", 0),  # no audio
    ]
    rows, out = [], {}
    for k, (family, folder, abbr, full, pitch, midi, dyn, fold) in enumerate(notes):
        string = "4.0" if family == "Strings" else ""
        path = f"{family}/{folder}/ordinario/{abbr}-ord-{pitch}-{dyn}-N-N.wav"
        rows.append(
            [path, fold, family, abbr, full, "ord", "ordinario", pitch, midi, dyn, 2, 0, string, "FALSE"]
        )
        if k < 5:
            tone(root / "TinySOL" / path, k)
        out[Path(path).stem] = {"instrument": full, "pitch": pitch, "fold": fold}
    _write_csv(root / "TinySOL_metadata.csv", TINYSOL_HEADER, rows)
    return out


# ----------------------------------------------------------------------------- captions


def song_describer(root: Path) -> dict[str, tuple[str, str]]:
    """song_describer.csv + audio/NN/<track_id>.2min.mp3; caption_id -> (track_id, caption)."""
    captions = [
        (0, 1021548, 'A retro-futurist drum machine groove, "bubbly" synths, and a hazy lead.', "True"),
        (1, 1021548, "Electronic track with a steady beat.", "False"),
        (2, 18500, "Solo piano, slow and melancholic.", "True"),
        (3, 246601, "Upbeat rock song with distorted guitars, drums and male vocals.", ""),
        (4, 700000, "Ambient drone.", "True"),  # no audio
    ]
    rows = []
    for cid, tid, text, valid in captions:
        rel = f"{tid % 100:02d}/{tid}.mp3"
        rows.append([cid, tid, text, valid, 1, 100 + tid % 7, 200 + tid % 5, rel, 212.5])
    header = ["caption_id", "track_id", "caption", "is_valid_subset", "familiarity", "artist_id", "album_id",
              "path", "duration"]  # fmt: skip
    _write_csv(root / "song_describer.csv", header, rows)
    for k, tid in enumerate(sorted({c[1] for c in captions if c[1] != 700000})):
        tone(root / "audio" / f"{tid % 100:02d}" / f"{tid}.2min.mp3", k)
    return {str(c[0]): (str(c[1]), c[2], c[3]) for c in captions}


def musiccaps(root: Path) -> dict[str, tuple[str, list[str], bool]]:
    """musiccaps-public.csv + <ytid>.wav; ytid -> (caption, aspects, is_audioset_eval)."""
    clips = [
        ("-0Gj8-vB1q4", ["low quality", "sustained strings melody", "soft female vocal"], True),
        ("-0SdAVK79lg", ["guitar song", "piano backing", "low quality"], False),
        ("-0vPFx-wRRI", ["piano", "low quality", "guitar song"], False),
        ("-0xzrMun0Rs", ["amateur recording", "piano"], True),
        ("-1LrH01Ei1w", ["rock", "low quality"], False),  # no audio
    ]
    rows = []
    for k, (ytid, aspects, is_eval) in enumerate(clips):
        caption = f'The low quality recording features a {aspects[0]}, with "quotes", commas and {k} more.'
        rows.append(
            [ytid, 30, 40, "/m/0140xf,/m/02cjck", repr(aspects), caption, k % 3, "False", str(is_eval)]
        )
    header = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption", "author_id",
              "is_balanced_subset", "is_audioset_eval"]  # fmt: skip
    _write_csv(root / "musiccaps-public.csv", header, rows)
    for k, (ytid, _, _) in enumerate(clips[:4]):
        tone(root / f"{ytid}.wav", k)
    return {r[0]: (r[5], c[1], c[2]) for r, c in zip(rows, clips, strict=True)}


# ----------------------------------------------------------------------------- GiantSteps+ key (Zenodo)


def giantsteps_plus(root: Path) -> dict[str, str]:
    """Zenodo's GiantSteps+ (mirdata's giantsteps_key): audio/<id> <Artist> - <Title>.mp3 and
    keys_gs+/<same name>.txt (no trailing newline), meta/<same name>.json; id -> key text."""
    tracks = [  # id, "Artist - Title", key text
        ("10089", "Jason Sparks - Close My Eyes feat. J. Little (Original Mix)", "D major"),
        ("1004923", "Hot Natured, Ali Love - Forward Motion (Original Mix)", "Db minor"),
        ("3424038", "Dr. Motte - Mayday (Remix)", "A major"),
        ("5377710", "Unknown - Lost (Original Mix)", "Bb minor"),  # no audio
        ("608452", "Someone - Atonal (Original Mix)", "-"),  # no single key: left out
    ]
    for k, (track_id, name, key) in enumerate(tracks):
        stem = f"{track_id} {name}"
        (root / "keys_gs+").mkdir(parents=True, exist_ok=True)
        (root / "keys_gs+" / f"{stem}.txt").write_text(key)
        (root / "meta").mkdir(exist_ok=True)
        (root / "meta" / f"{stem}.json").write_text(json.dumps({"bpm": 126, "artists": [{"name": "x"}]}))
        if track_id != "5377710":
            tone(root / "audio" / f"{stem}.mp3", k)
    return {t[0]: t[2] for t in tracks}


# ----------------------------------------------------------------------------- GiantSteps tempo

GIANTSTEPS_TEMPO_COMMIT = "0b7d47ba8cae59d3535a02e3db69e2cf6d0af5bb"


def giantsteps_tempo(root: Path, mirdata: bool = False) -> dict[str, tuple[float, float | None]]:
    """The giantsteps-tempo-dataset clone: annotations/tempo/<id>.LOFI.bpm (v1),
    annotations_v2/tempo/<id>.LOFI.bpm (v2), audio/<id>.LOFI.mp3 (audio_dl.sh's). With
    `mirdata`, mirdata's layout: ROOT/giantsteps-tempo-dataset-<commit>/annotations... and
    ROOT/audio/. Returns id -> (v1 bpm, v2 bpm)."""
    tracks = {  # id: (v1 text, v2 text); one track has no audio, one a zero v2 tempo
        "1030011": ("128", "127.0\n"),
        "28952": ("85", "170"),
        "3346998": ("140", "140\n"),
        "4223867": ("174", "0"),  # v2: no tempo (left out)
        "999999": ("120", "120"),  # no audio
    }
    clone = root / f"giantsteps-tempo-dataset-{GIANTSTEPS_TEMPO_COMMIT}" if mirdata else root
    for k, (track_id, (v1, v2)) in enumerate(tracks.items()):
        for folder, text in (("annotations", v1), ("annotations_v2", v2)):
            f = clone / folder / "tempo" / f"{track_id}.LOFI.bpm"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        (clone / "annotations" / "jams").mkdir(exist_ok=True)
        (clone / "annotations" / "jams" / f"{track_id}.LOFI.jams").write_text("{}")
        if track_id != "999999":
            tone(root / "audio" / f"{track_id}.LOFI.mp3", k)
    return {t: (float(v1), float(v2) or None) for t, (v1, v2) in tracks.items()}


# ----------------------------------------------------------------------------- DEAM

DEAM_SONG_LEVEL = Path("annotations", "annotations averaged per song", "song_level")


def deam(root: Path, nested: bool = False) -> dict[str, tuple[float, float]]:
    """MEMD_audio/<song_id>.mp3 + annotations/annotations averaged per song/song_level/
    static_annotations_averaged_songs_{1_2000,2000_2058}.csv (", " after commas). With
    `nested`, the two zips unzipped into DEAM_audio/ and DEAM_Annotations/. id -> (a, v)."""
    first = [(2, 3.1, 3.0), (3, 3.5, 3.3), (1000, 6.2, 5.1), (1999, 4.0, 4.4)]  # 1999: no audio
    second = [(2001, 5.4, 6.6), (2058, 7.1, 2.4)]
    ann = root / ("DEAM_Annotations" if nested else "") / DEAM_SONG_LEVEL
    audio = root / ("DEAM_audio" if nested else "") / "MEMD_audio"
    ann.mkdir(parents=True)
    header = "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
    for name, rows in (("1_2000", first), ("2000_2058", second)):
        lines = [f"{s}, {v}, 0.94, {a}, 0.63\n" for s, a, v in rows]
        (ann / f"static_annotations_averaged_songs_{name}.csv").write_text(header + "".join(lines))
    for k, (s, _, _) in enumerate(first + second):
        if s != 1999:
            tone(audio / f"{s}.mp3", k)
    return {str(s): (a, v) for s, a, v in first + second}


# ----------------------------------------------------------------------------- FMA

FMA_GENRES = [  # genre_id, #tracks, parent, title, top_level
    (2, 5271, 0, "International", 2),
    (12, 32923, 0, "Rock", 12),
    (15, 34413, 0, "Electronic", 15),
    (21, 8389, 0, "Hip-Hop", 21),
    (25, 9261, 12, "Punk", 12),
    (38, 38154, 0, "Experimental", 38),
    (4, 1135, 0, "Jazz", 4),
]


SUBSET_FOLDERS = {"small": ("small", "medium", "large"), "medium": ("medium", "large"), "large": ("large",)}


def fma(root: Path) -> dict[str, dict]:
    """fma_metadata/tracks.csv (3-row header, quoted multi-line fields), genres.csv, and
    fma_small/, fma_medium/ and fma_large/ audio as <NNN>/<NNNNNN>.mp3; "NNNNNN" -> track row."""
    tracks = [  # track_id, subset, split, genre_top, genres_all
        (2, "small", "training", "Hip-Hop", [21]),
        (5, "small", "test", "Hip-Hop", [21]),
        (10, "small", "validation", "Rock", [12, 25]),
        (140, "small", "training", "International", [2]),
        (1482, "medium", "training", "Jazz", [4, 38]),
        (2093, "medium", "test", "Electronic", [15]),
        (15000, "small", "training", "Electronic", [15]),  # no audio
        (20000, "large", "training", "Rock", [12]),
        (123456, "large", "validation", "", [38]),  # no top genre
    ]
    top = ["", "album", "album", "artist", "set", "set", "track", "track", "track", "track", "track"]
    sub = ["", "comments", "title", "bio", "split", "subset", "bit_rate", "genre_top", "genres",
           "genres_all", "title"]  # fmt: skip
    third = ["track_id"] + [""] * (len(top) - 1)
    rows = []
    for tid, subset, split, genre_top, genres_all in tracks:
        bio = f'<p>Artist {tid}, "quoted",\nover two lines</p>'
        rows.append(
            [tid, 0, f"Album {tid}", bio, split, subset, 256000, genre_top, str(genres_all[-1:]), str(genres_all),
             f"Song, {tid}"]
        )  # fmt: skip
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    with open(meta / "tracks.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerows([top, sub, third, *rows])
    _write_csv(meta / "genres.csv", ["genre_id", "#tracks", "parent", "title", "top_level"], FMA_GENRES)
    out = {}
    for k, (tid, subset, split, genre_top, genres_all) in enumerate(tracks):
        name = f"{tid:06d}"
        if tid != 15000:
            for folder in SUBSET_FOLDERS[subset]:  # each zip holds its smaller subsets too
                tone(root / f"fma_{folder}" / name[:3] / f"{name}.mp3", k)
        out[name] = {"subset": subset, "split": split, "genre_top": genre_top, "genres_all": genres_all}
    return out


def gtzan_partial(genres: Path) -> list[str]:
    """A partial GTZAN copy: genres/ with only some genre folders (no blues/); returns the stems."""
    stems = ["classical.00000", "classical.00001", "rock.00042", "metal.00007"]
    for k, stem in enumerate(stems):
        tone(genres / stem.split(".")[0] / f"{stem}.wav", k)
    return stems
