"""The labels and captions reader on files as people write them (no audio needed)."""

import json
import unicodedata

import pytest

from jaxmusic.prepare.labels import parse_task, read_captions, read_labels
from jaxmusic.prepare.shards import PrepareError


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_a_byte_order_mark_is_accepted_in_csv_json_and_captions(tmp_path):
    bom = b"\xef\xbb\xbf"
    csv_path = write(tmp_path, "l.csv", bom + b"path,genre\na.wav,rock\n")
    json_path = write(tmp_path, "l.json", bom + json.dumps({"a.wav": {"genre": "rock"}}).encode())
    caps = write(tmp_path, "c.jsonl", bom + b'{"path": "a.wav", "caption": "a riff"}\n')
    for path in (csv_path, json_path):
        table = read_labels(path, tmp_path)
        assert table.tasks == {"genre": {"kind": "single", "classes": ["rock"]}}
        assert table.labels == {"a.wav": {"genre": 0}}
    assert read_captions(caps, tmp_path) == {"a.wav": "a riff"}


def test_windows_1252_is_read_with_a_one_line_warning(tmp_path, capsys):
    path = write(tmp_path, "l.csv", "path,genre\ncafé.wav,música\n".encode("cp1252"))
    table = read_labels(path, tmp_path)
    assert table.labels == {"café.wav": {"genre": 0}}
    assert table.tasks["genre"]["classes"] == ["música"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "Windows-1252" in err[0]


def test_neither_utf8_nor_cp1252_is_one_line_naming_the_line(tmp_path):
    path = write(tmp_path, "l.csv", b"path,genre\na.wav,rock\nb\x81.wav,pop\n")
    with pytest.raises(PrepareError) as e:
        read_labels(path, tmp_path)
    message = str(e.value)
    assert "\n" not in message and f"{path}:3:" in message and "UTF-8" in message


def test_file_names_are_nfc_on_the_labels_side(tmp_path):
    nfd = unicodedata.normalize("NFD", "Beyoncé/Déjà vu.wav")
    path = write(tmp_path, "l.csv", f"path,genre\n{nfd},pop\n")
    assert list(read_labels(path, tmp_path).labels) == [unicodedata.normalize("NFC", nfd)]
    caps = write(tmp_path, "c.jsonl", json.dumps({"path": nfd, "caption": "x"}) + "\n")
    assert list(read_captions(caps, tmp_path)) == [unicodedata.normalize("NFC", nfd)]


def test_header_names_are_stripped_and_a_trailing_comma_is_tolerated(tmp_path):
    path = write(tmp_path, "l.csv", "path, genre ,\na.wav, rock,\nb.wav,jazz\n")
    table = read_labels(path, tmp_path)
    assert table.tasks == {"genre": {"kind": "single", "classes": ["jazz", "rock"]}}
    assert table.labels == {"a.wav": {"genre": 1}, "b.wav": {"genre": 0}}
    # The unnamed column must stay empty.
    bad = write(tmp_path, "bad.csv", "path,genre,\na.wav,rock,oops\n")
    with pytest.raises(PrepareError, match="no name"):
        read_labels(bad, tmp_path)


def test_rows_naming_one_file_are_an_error_naming_both(tmp_path):
    path = write(tmp_path, "l.csv", "path,genre\n./X.WAV,rock\nY.WAV,pop\nsub/../X.WAV,jazz\n")
    with pytest.raises(PrepareError) as e:
        read_labels(path, tmp_path)
    message = str(e.value)
    assert "line 2" in message and "line 4" in message and "X.WAV" in message and "\n" not in message
    caps = write(
        tmp_path, "c.jsonl", '{"path": "./a.wav", "caption": "x"}\n{"path": "a.wav", "caption": "y"}\n'
    )
    with pytest.raises(PrepareError, match="lines 1 and 2"):
        read_captions(caps, tmp_path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("l.csv", "path;genre;bpm\na.wav;rock;90.5\nb.wav;pop;120\n"),
        ("l.csv", "path\tgenre\tbpm\na.wav\trock\t90.5\nb.wav\tpop\t120\n"),
        ("l.tsv", "path\tgenre\tbpm\na.wav\trock\t90.5\nb.wav\tpop\t120\n"),
        ("l.txt", "path,genre,bpm\na.wav,rock,90.5\nb.wav,pop,120\n"),
    ],
)
def test_delimiter_is_sniffed(tmp_path, name, text):
    table = read_labels(write(tmp_path, name, text), tmp_path)
    assert table.tasks["genre"] == {"kind": "single", "classes": ["pop", "rock"]}
    assert table.labels["b.wav"] == {"genre": 0, "bpm": 120.0}
    assert table.labels["a.wav"]["bpm"] == 90.5


def test_path_column_defaults_and_option(tmp_path):
    table = read_labels(write(tmp_path, "l.csv", "File,label,split\na.wav,x,train\nb.wav,y,test\n"), tmp_path)
    assert table.tasks == {"label": {"kind": "single", "classes": ["x", "y"]}}
    assert table.splits == {"a.wav": "train", "b.wav": "test"} and table.has_split_column
    path = write(tmp_path, "m.csv", "id,clip,genre\n1,a.wav,rock\n")
    with pytest.raises(PrepareError, match="path column"):
        read_labels(path, tmp_path)
    table = read_labels(path, tmp_path, path_column="clip")
    assert table.labels == {"a.wav": {"id": 0, "genre": 0}}
    with pytest.raises(PrepareError, match="--path-column"):
        read_labels(path, tmp_path, path_column="nope")


def test_integer_class_ids_are_single_label_unless_told(tmp_path):
    rows = [f"{i:02d}.wav,{i % 12},{i * 7},{0.5 * i}" for i in range(40)]
    path = write(tmp_path, "l.csv", "path,tonic,many,score\n" + "\n".join(rows) + "\n")
    table = read_labels(path, tmp_path)
    assert table.tasks["tonic"] == {"kind": "single", "classes": [str(i) for i in range(12)]}
    assert table.labels["13.wav"]["tonic"] == 1
    assert "class ids" in table.notes["tonic"] and "tonic:regression" in table.notes["tonic"]
    assert table.tasks["many"] == {"kind": "regression"}  # 40 distinct integers
    assert table.tasks["score"] == {"kind": "regression"}
    forced = read_labels(path, tmp_path, tasks=[parse_task("tonic:regression")])
    assert forced.tasks == {"tonic": {"kind": "regression"}} and forced.labels["13.wav"] == {"tonic": 1.0}
    assert forced.notes["tonic"] == "from --task"


def test_task_option_chooses_forces_and_renames(tmp_path):
    path = write(tmp_path, "l.csv", "path,genre,year:single,mood\na.wav,rock,1990,calm\nb.wav,pop,2001,\n")
    table = read_labels(path, tmp_path, tasks=[parse_task("genre=style"), parse_task("year")])
    assert table.tasks == {
        "style": {"kind": "single", "classes": ["pop", "rock"]},
        "year": {"kind": "single", "classes": ["1990", "2001"]},
    }
    table = read_labels(path, tmp_path, tasks=[parse_task("mood:multi")])
    assert table.tasks == {"mood": {"kind": "multi", "classes": ["calm"]}} and table.labels["b.wav"] == {
        "mood": []
    }
    with pytest.raises(PrepareError, match="no such column"):
        read_labels(path, tmp_path, tasks=[parse_task("tempo")])
    for bad in ("genre:ordinal", ":single", "genre="):
        with pytest.raises(PrepareError, match="--task"):
            parse_task(bad)
