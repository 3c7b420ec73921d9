"""Dataset adapters on tiny generated stand-ins in each distributor's exact layout:
items -> prepare_items -> shards, checked against the metadata the fixture wrote."""

import argparse
import json
import warnings

import adapter_fixtures as fx
import numpy as np
import pytest
from conftest import start_cli

import jaxmusic.prepare.adapters as adapters_package
from jaxmusic import cli
from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.prepare.adapters import ADAPTERS
from jaxmusic.prepare.adapters.giantsteps_key import parse_key
from jaxmusic.prepare.items import prepare_items
from jaxmusic.prepare.synth import KEYS

RATE = 8000
# Fixtures leave some audio out on purpose; `run` checks that warning itself.
pytestmark = pytest.mark.filterwarnings("ignore:.*have no audio file:UserWarning")


def parse(name, *argv):
    parser = argparse.ArgumentParser()
    ADAPTERS[name].add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)  # the CLI's, read by adapters that split
    return parser.parse_args([str(a) for a in argv])


def run(tmp_path, name, *argv):
    """adapter.items, then prepare_items; returns (DatasetItems, manifest, {id: record header})."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = ADAPTERS[name].items(parse(name, *argv))
    if d.missing:  # the missing are reported once, by name
        assert any(
            f"{len(d.missing)} of" in str(w.message) and d.missing[0] in str(w.message) for w in caught
        )
    for w in caught:  # passed on, for the tests' pytest.warns
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    out = tmp_path / "out"
    manifest = prepare_items(
        d.items, out, name=d.name, tasks=d.tasks, source=d.source, sample_rate=RATE, workers=1, progress=False
    )
    decoded = {}
    for split in manifest["splits"]:
        for raw in open_split(str(out), split):
            rec = records.decode(raw)
            decoded[rec["id"]] = {**rec, "split": split}
    assert manifest["rejected"] == 0, (out / "rejected.jsonl").read_text()
    assert json.loads(json.dumps(d.source)) == manifest["source"]  # JSON-clean provenance
    # Every adapter says which split it made, in a word and a sentence (the CLI prints both).
    assert d.source["split"] in ("official", "filtered", "seeded", "official+seeded")
    assert isinstance(d.source["split_note"], str) and 20 < len(d.source["split_note"]) < 200
    assert "\n" not in d.source["split_note"]
    return d, manifest, decoded


def counts(manifest):
    return {s: v["clips"] for s, v in manifest["splits"].items()}


def split_counts(expected):
    out = {"train": 0, "valid": 0, "test": 0}
    for split in expected.values():
        out[split] += 1
    return out


def test_registry():
    assert list(ADAPTERS)[:11] == [
        "mtat", "gtzan", "nsynth", "jamendo", "giantsteps_key", "emomusic", "tinysol", "captions",
        "giantsteps_tempo", "deam", "fma",
    ]  # fmt: skip
    doc = adapters_package.__doc__
    for name in ADAPTERS:
        assert f"| {name} " in doc  # the docstring's table lists every adapter
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name
        if name != "mirdata":  # reads whatever mirdata holds: no one place to get it from
            assert "http" in adapter.help or "github.com" in adapter.help  # says where to get it


# ----------------------------------------------------------------------------- MagnaTagATune


def _mtat_top50(clips):
    totals = [sum(tags[c] for _, tags in clips.values()) for c in range(188)]
    return [fx.MTAT_TAGS[c] for c in sorted(range(188), key=lambda c: (-totals[c], c))[:50]]


def _check_mtat_labels(decoded, clips, classes):
    for clip_id, rec in decoded.items():
        tags = clips[clip_id][1]
        want = [k for k, t in enumerate(classes) if tags[fx.MTAT_TAGS.index(t)]]
        assert rec["labels"] == {"tags": want}


def test_mtat_pons_folders(tmp_path):
    clips = fx.mtat(tmp_path / "mtat")
    d, manifest, decoded = run(tmp_path, "mtat", "--root", tmp_path / "mtat")
    classes = _mtat_top50(clips)
    assert manifest["tasks"] == {"tags": {"kind": "multi", "classes": classes}}
    assert classes != fx.MTAT_TAGS[:50]  # frequency order, not column order
    # Folders 0, 5, b train; c valid; d, f test; the e/ clip has no mp3.
    assert counts(manifest) == {"train": 3, "valid": 2, "test": 2}
    assert d.missing == [clips["30"][0]]
    assert decoded["2"]["split"] == "train" and decoded["18"]["split"] == "valid"
    assert decoded["22"]["split"] == "test"
    _check_mtat_labels(decoded, clips, classes)
    assert decoded["2"]["labels"]["tags"] == list(range(50))  # clip 0 carries every top tag
    assert decoded["2"]["num_samples"] == pytest.approx(fx.SECONDS * RATE, abs=RATE * 0.1)


def test_mtat_won2020_and_pons_files(tmp_path):
    clips = fx.mtat(tmp_path / "mtat")
    order = list(reversed(_mtat_top50(clips)))  # tags.npy's order wins over the computed one
    expected = fx.mtat_won_split(tmp_path / "won", clips, order)
    won = ("--split-style", "won2020", "--split-dir", tmp_path / "won")
    d, manifest, decoded = run(tmp_path, "mtat", "--root", tmp_path / "mtat", *won)
    assert manifest["tasks"]["tags"]["classes"] == order
    assert split_counts(expected) == {"train": 3, "valid": 1, "test": 3}
    assert counts(manifest) == {"train": 3, "valid": 1, "test": 2}
    assert d.missing == [clips["30"][0]]  # listed in test.npy, no mp3
    assert {k: v["split"] for k, v in decoded.items()} == {k: s for k, s in expected.items() if k != "30"}
    _check_mtat_labels(decoded, clips, order)

    expected = fx.mtat_pons_split(tmp_path / "pons", clips)
    d, manifest, decoded = run(
        tmp_path / "p", "mtat", "--root", tmp_path / "mtat", "--split-dir", tmp_path / "pons"
    )
    assert {k: v["split"] for k, v in decoded.items()} == {k: s for k, s in expected.items() if k != "30"}
    assert "10" not in decoded  # not in the gt files


def test_mtat_won_split_must_match_annotations(tmp_path):
    clips = fx.mtat(tmp_path / "mtat")
    fx.mtat_won_split(tmp_path / "won", clips, _mtat_top50(clips))
    np.save(tmp_path / "won" / "valid.npy", np.array(["5\tc/not-in-annotations.mp3"]))
    with pytest.raises(ValueError, match="does not match annotations_final.csv"):
        won = ("--split-style", "won2020", "--split-dir", tmp_path / "won")
        ADAPTERS["mtat"].items(parse("mtat", "--root", tmp_path / "mtat", *won))


# ----------------------------------------------------------------------------- GTZAN

_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


@pytest.mark.filterwarnings("ignore:gtzan.*genre folders are absent:UserWarning")
def test_gtzan_fault_filtered(tmp_path):
    split_dir = fx.gtzan(tmp_path / "gtzan")
    d, manifest, decoded = run(tmp_path, "gtzan", "--root", tmp_path / "gtzan", "--split-dir", split_dir)
    assert manifest["tasks"] == {"genre": {"kind": "single", "classes": list(_GENRES)}}
    assert counts(manifest) == {"train": 3, "valid": 1, "test": 2}  # jazz.00054 missing, pop not listed
    assert d.missing == ["jazz/jazz.00054.wav"]
    for split, paths in fx.GTZAN_SPLITS.items():
        for rel in paths:
            stem = rel.split("/")[1].removesuffix(".wav")
            if stem in decoded:
                assert decoded[stem]["split"] == split
                assert decoded[stem]["labels"] == {"genre": _GENRES.index(rel.split("/")[0])}
    assert decoded["classical.00003"]["labels"] == {"genre": 1}  # an .au file
    assert decoded["rock.00099"]["labels"] == {"genre": 9}


def test_gtzan_without_split_files_takes_every_clip(tmp_path):
    fx.gtzan(tmp_path / "gtzan")
    with pytest.warns(
        UserWarning, match=r"5 of the 10 genre folders are absent .*country, disco, hiphop, jazz"
    ):
        d = ADAPTERS["gtzan"].items(parse("gtzan", "--root", tmp_path / "gtzan" / "genres"))
    assert len(d.items) == 7 and all(it.split is None for it in d.items)  # seeded by prepare
    assert len(d.missing) == 500 - 7  # the present genres' absent clips are reported, not fatal
    assert "pop.00042" in {it.clip_id for it in d.items}
    assert d.source["split"] == "seeded" and d.source["absent_genres"] == [
        "country",
        "disco",
        "hiphop",
        "jazz",
        "metal",
    ]


@pytest.mark.parametrize("where", ["genres", "parent", "kaggle"])
def test_gtzan_partial_copy_from_genres_or_its_parent(tmp_path, where):
    # A copy without blues/ (the genre the folder detection used to probe): --root one
    # level above genres/ found nothing ("none of the 1000 clips ... under --root").
    folder = {"genres": "gtzan/genres", "parent": "gtzan/genres", "kaggle": "gtzan/Data/genres_original"}[
        where
    ]
    stems = fx.gtzan_partial(tmp_path / folder)
    root = tmp_path / folder if where == "genres" else tmp_path / "gtzan"
    with pytest.warns(UserWarning, match=r"gtzan: 7 of the 10 genre folders are absent .*\(blues, country"):
        d, manifest, decoded = run(tmp_path, "gtzan", "--root", root)
    assert sorted(decoded) == sorted(stems)
    assert manifest["tasks"]["genre"]["classes"] == list(_GENRES)  # all 10 classes kept
    assert decoded["metal.00007"]["labels"] == {"genre": _GENRES.index("metal")}
    assert d.source["root"] == str(tmp_path / folder)


def test_gtzan_root_without_genres_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        ADAPTERS["gtzan"].items(parse("gtzan", "--root", tmp_path / "empty"))
    msg = str(e.value)
    assert "\n" not in msg and "no GTZAN genre folders" in msg and "marsyas.info" in msg


# ----------------------------------------------------------------------------- NSynth


def test_nsynth_official_splits(tmp_path):
    notes = fx.nsynth(tmp_path / "nsynth")
    d, manifest, decoded = run(tmp_path, "nsynth", "--root", tmp_path / "nsynth")
    tasks = manifest["tasks"]
    assert (
        tasks["instrument_family"]["classes"][3] == "guitar"
        and len(tasks["instrument_family"]["classes"]) == 11
    )
    assert tasks["pitch"]["classes"][0] == "21" and len(tasks["pitch"]["classes"]) == 88
    assert tasks["qualities"]["kind"] == "multi" and len(tasks["qualities"]["classes"]) == 10
    # MIDI 9 and 127 are outside the piano range; one test note has no audio.
    assert d.source["left_out_pitch_out_of_range"] == 2
    assert counts(manifest) == {"train": 3, "valid": 1, "test": 1}
    assert len(d.missing) == 1 and d.missing[0].startswith("nsynth-test/audio/bass_")
    for note_str, rec in decoded.items():
        ex = notes[note_str]
        assert rec["split"] == ex["split"]
        assert rec["labels"] == {
            "instrument_family": ex["instrument_family"],
            "pitch": ex["pitch"] - 21,
            "instrument_source": ex["instrument_source"],
            "qualities": [i for i, q in enumerate(ex["qualities"]) if q],
        }
        assert (
            tasks["instrument_family"]["classes"][rec["labels"]["instrument_family"]]
            == ex["instrument_family_str"]
        )

    d128 = ADAPTERS["nsynth"].items(parse("nsynth", "--root", tmp_path / "nsynth", "--pitch-classes", 128))
    assert len(d128.items) == 7 and len(d128.tasks["pitch"]["classes"]) == 128
    assert {it.clip_id: it.labels["pitch"] for it in d128.items} == {
        k: v["pitch"] for k, v in notes.items() if not k.startswith("bass_synthetic")
    }


# ----------------------------------------------------------------------------- MTG-Jamendo


def test_jamendo_top50(tmp_path):
    tracks = fx.jamendo(tmp_path / "audio", tmp_path / "split-0")
    d, manifest, decoded = run(
        tmp_path, "jamendo", "--root", tmp_path / "audio", "--split-dir", tmp_path / "split-0"
    )
    classes = manifest["tasks"]["tags"]["classes"]
    assert classes == sorted({t for _, tags in tracks.values() for t in tags})
    assert counts(manifest) == {"train": 2, "valid": 1, "test": 1}
    assert d.missing == ["99/99999.mp3"]
    for track_id, rec in decoded.items():
        split, tags = tracks[track_id]
        assert rec["split"] == split
        assert [classes[i] for i in rec["labels"]["tags"]] == sorted(tags)
    assert "track_1376256" in decoded  # found as 56/1376256.low.mp3


# ----------------------------------------------------------------------------- GiantSteps key


def test_parse_key_merges_enharmonics():
    assert parse_key("Db minor") == parse_key("C# minor") == KEYS.index("C# minor")
    assert parse_key("d# major\t") == parse_key("Eb major")
    assert parse_key("Gb major") == KEYS.index("F# major")
    assert parse_key("F minor / G# major") is None and parse_key("-") is None


def test_giantsteps_key_with_mtg_training_set(tmp_path):
    keys = fx.giantsteps(tmp_path / "gs")
    mtg = fx.giantsteps_mtg(tmp_path / "mtg")
    d, manifest, decoded = run(
        tmp_path, "giantsteps_key", "--root", tmp_path / "gs", "--mtg-root", tmp_path / "mtg"
    )
    assert manifest["tasks"] == {"key": {"kind": "single", "classes": list(KEYS)}}
    assert d.missing == ["audio/5377710.LOFI.mp3"]
    assert d.source["mtg_left_out_unsure_or_multiple_keys"] == 3
    assert counts(manifest) == {"train": 1, "valid": 2, "test": 3}
    for track_id, key in keys.items():
        if track_id in decoded:
            assert decoded[track_id]["split"] == "test"
            assert decoded[track_id]["labels"]["key"] == parse_key(key)
    assert KEYS[decoded["1004923"]["labels"]["key"]] == "C# minor"  # written "Db minor"
    for track_id, (key, split) in mtg.items():
        assert decoded[track_id]["split"] == split
        assert decoded[track_id]["labels"]["key"] == parse_key(key)


def test_giantsteps_key_alone(tmp_path):
    fx.giantsteps(tmp_path / "gs")
    d = ADAPTERS["giantsteps_key"].items(parse("giantsteps_key", "--root", tmp_path / "gs"))
    assert {it.split for it in d.items} == {None}  # seeded by prepare
    d = ADAPTERS["giantsteps_key"].items(
        parse("giantsteps_key", "--root", tmp_path / "gs", "--split", "test")
    )
    assert {it.split for it in d.items} == {"test"} and len(d.items) == 3


# ----------------------------------------------------------------------------- emoMusic


def test_emomusic_customary_split(tmp_path):
    songs = fx.emomusic(tmp_path / "emo")
    d, manifest, decoded = run(tmp_path, "emomusic", "--root", tmp_path / "emo")
    assert {t: v["kind"] for t, v in manifest["tasks"].items()} == {
        "arousal": "regression",
        "valence": "regression",
    }
    assert counts(manifest) == {"train": 1, "valid": 1, "test": 1}
    assert d.missing == ["clips_45seconds/5.mp3"]
    for song_id, rec in decoded.items():
        arousal, valence, split = songs[song_id]
        assert rec["split"] == split
        assert rec["labels"] == {"arousal": arousal, "valence": valence}


def test_emomusic_without_songs_info_is_seeded(tmp_path):
    fx.emomusic(tmp_path / "emo")
    (tmp_path / "emo" / "annotations" / "songs_info.csv").unlink()
    with pytest.warns(UserWarning, match="seeded split"):
        d = ADAPTERS["emomusic"].items(parse("emomusic", "--root", tmp_path / "emo"))
    assert {it.split for it in d.items} == {None}


# ----------------------------------------------------------------------------- TinySOL


def test_tinysol_folds(tmp_path):
    notes = fx.tinysol(tmp_path / "tinysol")
    d, manifest, decoded = run(tmp_path, "tinysol", "--root", tmp_path / "tinysol", "--test-fold", 3)
    tasks = manifest["tasks"]
    assert tasks["instrument"]["classes"] == ["Bass Tuba", "Flute", "Violin"]
    assert tasks["pitch"]["classes"] == ["F#1", "C3", "G3", "C4", "A4"]  # by MIDI pitch
    assert counts(manifest) == {"train": 3, "valid": 1, "test": 1}  # fold 3 test, 4 valid
    assert d.missing == ["Strings/Violin/ordinario/Vn-ord-G3-ff-N-N.wav"]
    for stem, rec in decoded.items():
        note = notes[stem]
        assert rec["split"] == {3: "test", 4: "valid"}.get(note["fold"], "train")
        assert tasks["instrument"]["classes"][rec["labels"]["instrument"]] == note["instrument"]
        assert tasks["pitch"]["classes"][rec["labels"]["pitch"]] == note["pitch"]


# ----------------------------------------------------------------------------- captions


def test_song_describer(tmp_path):
    captions = fx.song_describer(tmp_path / "sdd")
    d, manifest, decoded = run(
        tmp_path, "captions", "--layout", "songdescriber", "--root", tmp_path / "sdd", "--split", "test"
    )
    assert manifest["name"] == "song_describer" and manifest["tasks"] == {}
    assert counts(manifest) == {"train": 0, "valid": 0, "test": 4}
    assert d.missing == ["audio/00/700000.2min.mp3"]
    for caption_id, rec in decoded.items():
        assert rec["caption"] == captions[caption_id][1] and rec["labels"] == {}
    assert decoded["0"]["num_samples"] == decoded["1"]["num_samples"]  # two captions, one track

    seeded = ADAPTERS["captions"].items(
        parse("captions", "--layout", "songdescriber", "--root", tmp_path / "sdd")
    )
    by_id = {it.clip_id: it for it in seeded.items}
    assert by_id["0"].split == by_id["1"].split  # a track's captions stay together
    valid_only = ADAPTERS["captions"].items(
        parse("captions", "--layout", "songdescriber", "--root", tmp_path / "sdd", "--valid-subset")
    )
    assert sorted(it.clip_id for it in valid_only.items) == ["0", "2"]


def test_musiccaps(tmp_path):
    clips = fx.musiccaps(tmp_path / "mc")
    d, manifest, decoded = run(
        tmp_path, "captions", "--layout", "musiccaps", "--root", tmp_path / "mc", "--aspects", 3
    )
    # "low quality" (4 segments), then "guitar song" and "piano" (2 each, ties alphabetical).
    assert manifest["tasks"] == {
        "aspects": {"kind": "multi", "classes": ["low quality", "guitar song", "piano"]}
    }
    assert d.missing == ["-1LrH01Ei1w.wav"]
    assert counts(manifest)["test"] == 2 and counts(manifest)["train"] + counts(manifest)["valid"] == 2
    classes = manifest["tasks"]["aspects"]["classes"]
    for ytid, rec in decoded.items():
        caption, aspects, is_eval = clips[ytid]
        assert rec["caption"] == caption
        assert (rec["split"] == "test") == is_eval
        assert [classes[i] for i in rec["labels"]["aspects"]] == [c for c in classes if c in aspects]


def test_prepare_command_runs_an_adapter(tmp_path):
    split_dir = fx.gtzan(tmp_path / "gtzan")
    proc = start_cli(
        "prepare", "gtzan", "--root", str(tmp_path / "gtzan"), "--split-dir", str(split_dir),
        "--out", str(tmp_path / "out"), "--sample-rate", "8000",
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "train 3, valid 1, test 2 clips at 8000 Hz; 0 files rejected" in out
    assert "1 listed files are missing on disk (first: jazz/jazz.00054.wav)" in out
    bad = start_cli("prepare", "gtzan", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and err.startswith("jaxmusic: error:") and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- layouts and messages


def _one_line_error(name, *argv, error=FileNotFoundError):
    with pytest.raises(error) as e:
        ADAPTERS[name].items(parse(name, *argv))
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_mtat_missing_split_files_say_which_where_and_whence(tmp_path):
    clips = fx.mtat(tmp_path / "mtat")
    fx.mtat_won_split(tmp_path / "won", clips, _mtat_top50(clips))
    (tmp_path / "won" / "valid.npy").unlink()
    won = ("--split-style", "won2020", "--split-dir", tmp_path / "won")
    msg = _one_line_error("mtat", "--root", tmp_path / "mtat", *won)
    assert str(tmp_path / "won" / "valid.npy") in msg and "valid split file" in msg
    assert "github.com/minzwon/sota-music-tagging-models" in msg

    fx.mtat_pons_split(tmp_path / "pons", clips)
    (tmp_path / "pons" / "test_gt_mtt.tsv").unlink()
    msg = _one_line_error("mtat", "--root", tmp_path / "mtat", "--split-dir", tmp_path / "pons")
    assert str(tmp_path / "pons" / "test_gt_mtt.tsv") in msg and "musicnn-training" in msg

    msg = _one_line_error("mtat", "--root", tmp_path / "mtat", "--split-style", "won2020")
    assert "--split-dir" in msg and "sota-music-tagging-models" in msg

    msg = _one_line_error("mtat", "--root", tmp_path / "won")  # no annotations_final.csv there
    assert "annotations_final.csv" in msg and str(tmp_path / "won") in msg and "mirg.city.ac.uk" in msg


def test_roots_one_level_above_the_dataset(tmp_path):
    fx.mtat(tmp_path / "data" / "magnatagatune")
    d = ADAPTERS["mtat"].items(parse("mtat", "--root", tmp_path / "data"))
    assert len(d.items) == 7 and d.source["root"] == str(tmp_path / "data" / "magnatagatune")
    fx.emomusic(tmp_path / "e" / "emoMusic")
    assert len(ADAPTERS["emomusic"].items(parse("emomusic", "--root", tmp_path / "e")).items) == 3
    fx.tinysol(tmp_path / "t" / "TinySOL")
    assert len(ADAPTERS["tinysol"].items(parse("tinysol", "--root", tmp_path / "t")).items) == 5
    fx.nsynth(tmp_path / "n" / "nsynth")
    assert len(ADAPTERS["nsynth"].items(parse("nsynth", "--root", tmp_path / "n")).items) == 5


# ----------------------------------------------------------------------------- GiantSteps+ (Zenodo)


@pytest.mark.parametrize("above", [False, True])
def test_giantsteps_key_zenodo_layout(tmp_path, above):
    # Before: "annotations/key has no .key files" for the release mirdata downloads.
    keys = fx.giantsteps_plus(tmp_path / "giantsteps_key")
    root = tmp_path if above else tmp_path / "giantsteps_key"
    with pytest.warns(UserWarning, match="1 key files hold no single major or minor key"):
        d, _, decoded = run(tmp_path, "giantsteps_key", "--root", root, "--split", "test")
    assert d.source["layout"] == "zenodo" and d.source["left_out_not_a_single_key"] == 1
    assert d.missing == ["audio/5377710 Unknown - Lost (Original Mix).mp3"]
    assert sorted(decoded) == ["1004923", "10089", "3424038"]
    for track_id, rec in decoded.items():
        assert rec["labels"] == {"key": parse_key(keys[track_id])} and rec["split"] == "test"
    assert d.source["split"] == "official"
    assert KEYS[decoded["10089"]["labels"]["key"]] == "D major"  # "... feat. J. Little (Original Mix)"


def test_giantsteps_key_layout_error_is_one_line(tmp_path):
    (tmp_path / "gs" / "audio").mkdir(parents=True)
    msg = _one_line_error("giantsteps_key", "--root", tmp_path / "gs")
    assert "annotations/key/" in msg and "keys_gs+/" in msg and "zenodo.org/record/1095691" in msg


# ----------------------------------------------------------------------------- GiantSteps tempo


@pytest.mark.parametrize("layout", ["clone", "mirdata"])
def test_giantsteps_tempo(tmp_path, layout):
    tempos = fx.giantsteps_tempo(tmp_path / "GiantSteps_tempo", mirdata=layout == "mirdata")
    d, manifest, decoded = run(tmp_path, "giantsteps_tempo", "--root", tmp_path / "GiantSteps_tempo")
    assert manifest["tasks"] == {"tempo": {"kind": "regression", "unit": "bpm"}}
    assert d.source["tempo_version"] == "v2" and d.source["left_out_no_tempo"] == 1
    assert d.source["split"] == "seeded" and "no official split" in d.source["split_note"]
    assert d.missing == ["audio/999999.LOFI.mp3"]
    assert {k: r["labels"]["tempo"] for k, r in decoded.items()} == {
        k: v2 for k, (_, v2) in tempos.items() if v2 and k != "999999"
    }
    assert sum(counts(manifest).values()) == 3

    above = tmp_path if layout == "clone" else tmp_path / "GiantSteps_tempo"  # one level above the clone
    v1 = ADAPTERS["giantsteps_tempo"].items(
        parse("giantsteps_tempo", "--root", above, "--tempo-version", "v1", "--split", "test")
    )
    assert {it.clip_id: it.labels["tempo"] for it in v1.items} == {
        k: v for k, (v, _) in tempos.items() if k != "999999"
    }
    assert {it.split for it in v1.items} == {"test"} and v1.source["split"] == "official"


def test_giantsteps_tempo_without_v2_reads_v1(tmp_path):
    tempos = fx.giantsteps_tempo(tmp_path / "gst")
    for f in (tmp_path / "gst" / "annotations_v2" / "tempo").iterdir():
        f.unlink()
    with pytest.warns(UserWarning, match="no v2 annotations"):
        d = ADAPTERS["giantsteps_tempo"].items(parse("giantsteps_tempo", "--root", tmp_path / "gst"))
    assert d.source["tempo_version"] == "v1" and len(d.items) == 4
    assert {it.clip_id: it.labels["tempo"] for it in d.items}["28952"] == tempos["28952"][0]
    msg = _one_line_error("giantsteps_tempo", "--root", tmp_path / "gst", "--tempo-version", "v2")
    assert "annotations_v2/tempo" in msg and "giantsteps-tempo-dataset" in msg


# ----------------------------------------------------------------------------- DEAM


@pytest.mark.parametrize("nested", [False, True])
def test_deam(tmp_path, nested):
    songs = fx.deam(tmp_path / "DEAM", nested=nested)
    d, manifest, decoded = run(tmp_path, "deam", "--root", tmp_path / "DEAM")
    assert manifest["tasks"] == {
        "arousal": {"kind": "regression", "range": [1.0, 9.0]},
        "valence": {"kind": "regression", "range": [1.0, 9.0]},
    }
    assert d.missing == ["MEMD_audio/1999.mp3"]
    assert sorted(decoded, key=int) == ["2", "3", "1000", "2001", "2058"]
    for song_id, rec in decoded.items():
        assert rec["labels"] == {"arousal": songs[song_id][0], "valence": songs[song_id][1]}
    assert d.source["split"] == "seeded" and "no official split" in d.source["split_note"]
    assert len(d.source["files"]["static_annotations"]) == 2


def test_deam_missing_annotations_is_one_line(tmp_path):
    fx.deam(tmp_path / "DEAM")
    for f in (tmp_path / "DEAM" / fx.DEAM_SONG_LEVEL).iterdir():
        f.unlink()
    msg = _one_line_error("deam", "--root", tmp_path / "DEAM")
    assert "static_annotations_averaged_songs_1_2000.csv" in msg and "cvml.unige.ch/databases/DEAM" in msg
    (tmp_path / "DEAM" / "MEMD_audio").rename(tmp_path / "DEAM" / "audio")
    msg = _one_line_error("deam", "--root", tmp_path / "DEAM")
    assert "no MEMD_audio in" in msg and str(tmp_path / "DEAM") in msg


# ----------------------------------------------------------------------------- FMA


def test_fma_small_official_split(tmp_path):
    tracks = fx.fma(tmp_path / "fma")
    d, manifest, decoded = run(tmp_path, "fma", "--root", tmp_path / "fma")
    classes = manifest["tasks"]["genre"]["classes"]
    assert classes == ["Electronic", "Hip-Hop", "International", "Rock"]  # the small subset's, sorted
    assert manifest["tasks"] == {"genre": {"kind": "single", "classes": classes}}
    assert d.missing == ["fma_small/015/015000.mp3"]
    assert sorted(decoded) == ["000002", "000005", "000010", "000140"]
    assert counts(manifest) == {"train": 2, "valid": 1, "test": 1}
    for tid, rec in decoded.items():
        assert rec["split"] == {"training": "train", "validation": "valid"}.get(tracks[tid]["split"], "test")
        assert classes[rec["labels"]["genre"]] == tracks[tid]["genre_top"]
    assert d.source["split"] == "official" and d.source["subset"] == "small"


def test_fma_medium_and_large_are_cumulative(tmp_path):
    tracks = fx.fma(tmp_path / "fma")
    medium = ADAPTERS["fma"].items(
        parse("fma", "--root", tmp_path / "fma", "--subset", "medium", "--genres-all")
    )
    ids = sorted(it.clip_id for it in medium.items)
    assert ids == ["000002", "000005", "000010", "000140", "001482", "002093"]  # small's too
    assert medium.tasks["genre"]["classes"] == ["Electronic", "Hip-Hop", "International", "Jazz", "Rock"]
    titles = medium.tasks["genres_all"]["classes"]
    assert titles == ["International", "Jazz", "Rock", "Electronic", "Hip-Hop", "Punk", "Experimental"]
    by_id = {it.clip_id: it for it in medium.items}
    assert [titles[i] for i in by_id["000010"].labels["genres_all"]] == ["Rock", "Punk"]
    assert [titles[i] for i in by_id["001482"].labels["genres_all"]] == ["Jazz", "Experimental"]

    large = ADAPTERS["fma"].items(parse("fma", "--root", tmp_path, "--subset", "large"))  # one level above
    assert len(large.items) == 7 and large.source["left_out_no_top_genre"] == 1
    assert "123456" not in {it.clip_id for it in large.items}  # no top genre
    assert {it.clip_id: it.split for it in large.items}["020000"] == "train"
    assert len(tracks) == 9


def test_fma_layout_errors_are_one_line(tmp_path):
    fx.fma(tmp_path / "fma")
    msg = _one_line_error("fma", "--root", tmp_path / "fma" / "fma_small")
    assert "fma_metadata" in msg and "github.com/mdeff/fma" in msg
    (tmp_path / "fma" / "fma_small").rename(tmp_path / "fma" / "small")
    msg = _one_line_error("fma", "--root", tmp_path / "fma")
    assert "no fma_small in" in msg and "github.com/mdeff/fma" in msg


def test_prepare_command_runs_fma_in_process(tmp_path, capsys):
    fx.fma(tmp_path / "fma")
    argv = [
        "prepare",
        "fma",
        "--root",
        str(tmp_path / "fma"),
        "--out",
        str(tmp_path / "out"),
        "--sample-rate",
        "8000",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.run(argv) == 0
    out = capsys.readouterr().out
    assert "train 2, valid 1, test 1 clips at 8000 Hz" in out
    assert "split: official — FMA's official split of fma_small" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["source"]["split"] == "official" and manifest["name"] == "fma"
