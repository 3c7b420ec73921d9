import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import unicodedata

import numpy as np
import pytest
import soundfile as sf

from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.prepare.audio_io import load_audio
from jaxmusic.prepare.folder import prepare_folder
from jaxmusic.prepare.items import REJECTED, STATE_DIR, Item, PrepareError, prepare_items
from jaxmusic.prepare.splits import assign_split

RATE = 16000


def tone(rate, seconds=1.0, freq=440.0, channels=1, amp=0.5):
    t = np.arange(round(rate * seconds)) / rate
    mono = amp * np.sin(2 * np.pi * freq * t)
    return (
        np.tile(mono[:, None], (1, channels)).astype(np.float32) if channels > 1 else mono.astype(np.float32)
    )


def put(path, data=None, **write_args):
    """Write `data` (bytes, or audio with `rate` and soundfile arguments) at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        rate = write_args.pop("rate")
        sf.write(path, data, rate, **write_args)
    return path


def patched(path, offset, value):
    data = bytearray(path.read_bytes())
    data[offset : offset + len(value)] = value
    path.write_bytes(bytes(data))
    return path


def clips(out):
    """Every record of a prepared dataset: {id: (split, record)}."""
    manifest = records.read_manifest(out)
    found = {}
    for split in manifest["splits"]:
        for raw in open_split(str(out), split):
            rec = records.decode(raw)
            assert rec["id"] not in found
            found[rec["id"]] = (split, rec)
    return found


def digests(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.array_record"))}


def run_cli(*args, **popen):
    cmd = [sys.executable, "-m", "jaxmusic.cli", "prepare", "folder", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **popen)


# --- (a) a folder with every kind of broken file ----------------------------------------

VALID = {  # relative path: (audio, soundfile arguments, genre)
    "rock/a.wav": (tone(44100, 1.5, 330, 2), {"rate": 44100, "subtype": "PCM_16"}, "rock"),
    "rock/B.WAV": (tone(48000, 1.0, 440), {"rate": 48000, "subtype": "PCM_24", "format": "WAV"}, "rock"),
    "jazz/c.flac": (tone(22050, 1.2, 550, 6), {"rate": 22050, "subtype": "PCM_16"}, "jazz"),
    "jazz/d.ogg": (tone(44100, 1.0, 660, 2), {"rate": 44100, "format": "OGG", "subtype": "VORBIS"}, "jazz"),
    "pop/e.mp3": (tone(48000, 1.0, 770, 2), {"rate": 48000, "format": "MP3"}, "pop"),
    "pop/f.aiff": (tone(8000, 1.0, 220), {"rate": 8000, "subtype": "PCM_16"}, "pop"),
    "pop/g.wav": (tone(16000, 0.8, 880, amp=0.9), {"rate": 16000, "subtype": "FLOAT"}, "pop"),
}


def _xing_claims_hours(path):
    data = bytearray(path.read_bytes())
    at = data.find(b"Xing")
    data[at + 8 : at + 12] = struct.pack(">I", 0x00FFFFFF)
    path.write_bytes(bytes(data))


def make_broken(root):
    """Write one file of each broken kind; returns {relative path: expected reason}."""
    b = root / "broken"
    wav = put(b / "src.bin", tone(RATE), rate=RATE, format="WAV", subtype="PCM_16").read_bytes()
    (b / "src.bin").unlink()
    put(b / "empty.wav", b"")
    put(b / "text.wav", b"just some notes\n" * 40)
    put(b / "noise.mp3", np.random.default_rng(1).bytes(30000))
    put(b / "cut.wav", wav[: len(wav) // 2])
    patched(put(b / "header.wav", wav), 20, b"\xff" * 16)
    patched(put(b / "nochannels.wav", wav), 22, struct.pack("<H", 0))
    put(b / "short.wav", tone(RATE, 0.1), rate=RATE)
    put(b / "silent.wav", np.zeros(RATE, np.float32), rate=RATE)
    put(b / "nan.wav", np.where(np.arange(RATE) == 99, np.nan, tone(RATE)), rate=RATE, subtype="FLOAT")
    put(b / "inf.wav", np.where(np.arange(RATE) == 9, -np.inf, tone(RATE)), rate=RATE, subtype="FLOAT")
    put(b / "noframes.wav", np.zeros(0, np.float32), rate=RATE)
    _xing_claims_hours(put(b / "hours.mp3", tone(RATE), rate=RATE, format="MP3"))
    (b / "folder.wav").mkdir()
    put(b / "song.m4a", b"\0\0\0\x20ftypM4A " + bytes(200))
    return {
        "broken/empty.wav": "empty",
        "broken/text.wav": "not_audio",
        "broken/noise.mp3": "not_audio",
        "broken/cut.wav": "truncated",
        "broken/header.wav": "bad_header",
        "broken/nochannels.wav": "zero_channels",
        "broken/short.wav": "too_short",
        "broken/silent.wav": "silent",
        "broken/nan.wav": "non_finite",
        "broken/inf.wav": "non_finite",
        "broken/noframes.wav": "no_frames",
        "broken/hours.mp3": "too_long",
        "broken/folder.wav": "not_a_file",
        "broken/song.m4a": "unsupported_format",
        "unlabelled.wav": "unlabelled",
    }


def test_folder_with_broken_files_is_prepared_completely(tmp_path):
    root = tmp_path / "music"
    for rel, (audio, args, _) in VALID.items():
        put(root / rel, audio, **args)
    expected_rejects = make_broken(root)
    put(root / "unlabelled.wav", tone(RATE), rate=RATE)
    put(root / "._a.wav", b"\0\x05\x16\x07 resource fork")  # hidden: skipped
    put(root / "notes.txt", b"not audio and not named like it")
    labels = tmp_path / "labels.csv"
    rows = [f"{rel},{genre}" for rel, (_, _, genre) in VALID.items()]
    rows += [f"{rel},rock" for rel in expected_rejects if rel != "unlabelled.wav"]
    labels.write_text("path,genre\n" + "\n".join([*rows, "ghost.wav,pop"]) + "\n")

    out = tmp_path / "out"
    result = run_cli(
        "--in", root, "--out", out, "--labels", labels, "--sample-rate", RATE, "--workers", 2,
        "--clips-per-shard", 3,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"prepared {out}: train ") and lines[0].endswith(
        f"clips at {RATE} Hz; {len(expected_rejects)} files rejected (see {out / REJECTED})"
    )
    assert "1 entries" in lines[1]  # ghost.wav

    manifest = records.read_manifest(out)
    assert manifest["tasks"] == {"genre": {"kind": "single", "classes": ["jazz", "pop", "rock"]}}
    assert sum(s["clips"] for s in manifest["splits"].values()) == len(VALID)
    assert manifest["rejected"] == len(expected_rejects)
    found = clips(out)
    assert set(found) == set(VALID)
    for rel, (_, rec) in found.items():
        expected = load_audio(root / rel, RATE)
        np.testing.assert_array_equal(rec["audio"], np.round(expected * 32767).astype(np.int16))
        assert rec["labels"] == {"genre": ["jazz", "pop", "rock"].index(VALID[rel][2])}
        assert rec["sample_rate"] == RATE
    seconds = sum(len(rec["audio"]) for _, rec in found.values()) / RATE
    assert np.isclose(sum(s["seconds"] for s in manifest["splits"].values()), seconds)

    rejected = [json.loads(line) for line in (out / REJECTED).read_text().splitlines()]
    assert {os.path.relpath(r["path"], root): r["reason"] for r in rejected} == expected_rejects
    assert all(r["detail"] for r in rejected)
    assert not (out / STATE_DIR).exists() and not list(out.glob("*.partial"))

    # One worker process or two: the same bytes.
    serial = tmp_path / "serial"
    prepare_folder(root, serial, labels_file=labels, sample_rate=RATE, clips_per_shard=3, progress=False)
    assert digests(serial) == digests(out)


# --- (b) killed mid-way, then run again -------------------------------------------------


def test_killed_run_finishes_with_the_same_shards(tmp_path):
    root = tmp_path / "music"
    for i in range(48):
        put(root / f"{i:02d}.wav", tone(RATE, 15.0, 200 + 17 * i), rate=RATE, subtype="PCM_16")
    args = {"sample_rate": 22050, "clips_per_shard": 2}
    whole = tmp_path / "whole"
    reference = prepare_folder(root, whole, progress=False, **args)
    total = len(digests(whole))

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "jaxmusic.cli", "prepare", "folder", "--in", str(root), "--out", str(out)]
    cmd += ["--sample-rate", "22050", "--clips-per-shard", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if out.exists() and list(out.glob("*.array_record")):
            proc.kill()
            break
        time.sleep(0.001)
    proc.wait()
    assert proc.returncode == -9, "prepare finished before it could be killed"
    done = digests(out)
    assert 1 <= len(done) < total and not (out / records.MANIFEST).exists()
    # What the killed run finished is final; nothing else passes for a shard.
    assert all(digests(whole)[name] == sha for name, sha in done.items())
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}
    refused = run_cli("--in", root, "--out", out, "--sample-rate", 16000, "--clips-per-shard", 2)
    assert refused.returncode == 2 and "unfinished" in refused.stderr
    # A stale partial file where a later shard goes must be written over, not trusted.
    later = sorted(set(digests(whole)) - set(done))[-1]
    (out / f"{later}.partial").write_bytes(b"half a shard" * 100)

    result = run_cli("--in", root, "--out", out, "--sample-rate", 22050, "--clips-per-shard", 2)
    assert result.returncode == 0, result.stderr
    assert digests(out) == digests(whole)
    assert all((out / name).stat().st_mtime_ns == mtimes[name] for name in done)
    assert records.read_manifest(out)["splits"] == reference["splits"]
    assert not list(out.glob("*.partial")) and not (out / STATE_DIR).exists()
    # Complete now: the same command is a no-op, another one is refused.
    assert run_cli("--in", root, "--out", out, "--sample-rate", 22050, "--clips-per-shard", 2).returncode == 0
    refused = run_cli("--in", root, "--out", out, "--sample-rate", 16000)
    assert refused.returncode == 2 and "another --out" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


# --- (c) labels, splits and captions ----------------------------------------------------

NAMES = [f"{g}/{i}.wav" for g in ("folk", "metal") for i in range(6)]


def small_folder(root, names=NAMES):
    for i, rel in enumerate(names):
        put(root / rel, tone(8000, 0.6, 300 + 40 * i), rate=8000)
    return root


def test_labels_csv_kinds_splits_and_captions(tmp_path):
    root = small_folder(tmp_path / "music")
    csv_rows = ["path,genre,tags,bpm,year:single,split"]
    for i, rel in enumerate(NAMES):
        tags = "calm;acoustic" if rel.startswith("folk") else "loud"
        split = ("train", "valid", "test")[i % 3] if i < 6 else ""
        csv_rows.append(f"{rel},{rel.split('/')[0]},{tags},{90.5 + i},{(2, 10, 1)[i % 3]},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(csv_rows) + "\n")
    captions = [{"path": rel, "caption": f"clip number {i}"} for i, rel in enumerate(NAMES)]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captions))

    out = tmp_path / "out"
    manifest = prepare_folder(
        root,
        out,
        labels_file=str(tmp_path / "labels.csv"),
        captions_file=str(tmp_path / "captions.jsonl"),
        sample_rate=8000,
        seed=5,
        progress=False,
    )
    assert manifest["tasks"] == {
        "genre": {"kind": "single", "classes": ["folk", "metal"]},
        "tags": {"kind": "multi", "classes": ["acoustic", "calm", "loud"]},
        "bpm": {"kind": "regression"},
        "year": {"kind": "single", "classes": ["1", "2", "10"]},  # numeric classes sort as numbers
    }
    found = clips(out)
    assert set(found) == set(NAMES) and manifest["rejected"] == 0
    for i, rel in enumerate(NAMES):
        split, rec = found[rel]
        folk = rel.startswith("folk")
        assert rec["labels"] == {
            "genre": 0 if folk else 1,
            "tags": [0, 1] if folk else [2],
            "bpm": 90.5 + i,
            "year": {2: 1, 10: 2, 1: 0}[(2, 10, 1)[i % 3]],
        }
        assert rec["caption"] == f"clip number {i}"
        # Rows with a split keep it; the others get the seeded one.
        assert split == (
            ("train", "valid", "test")[i % 3] if i < 6 else assign_split(rel, 5, (0.8, 0.1, 0.1))
        )


def test_labels_json_matches_csv(tmp_path):
    root = small_folder(tmp_path / "music")
    table = {
        rel: {"genre": rel.split("/")[0], "mood": ["dark", "slow"] if i % 2 else "bright;fast"}
        for i, rel in enumerate(NAMES)
    }
    table[NAMES[0]]["score"] = 0.5  # one value only: the others lack it
    (tmp_path / "labels.json").write_text(json.dumps(table))
    manifest = prepare_folder(
        root, tmp_path / "out", labels_file=str(tmp_path / "labels.json"), sample_rate=8000, progress=False
    )
    assert manifest["tasks"]["genre"]["kind"] == "single"
    assert manifest["tasks"]["mood"] == {"kind": "multi", "classes": ["bright", "dark", "fast", "slow"]}
    assert manifest["tasks"]["score"] == {"kind": "regression"}
    # Every clip must carry every task: the eleven without a score are rejected.
    found = clips(tmp_path / "out")
    assert set(found) == {NAMES[0]}
    assert found[NAMES[0]][1]["labels"] == {"genre": 0, "mood": [0, 2], "score": 0.5}
    rejected = [json.loads(line) for line in (tmp_path / "out" / REJECTED).read_text().splitlines()]
    assert {r["reason"] for r in rejected} == {"unlabelled"} and len(rejected) == 11
    assert all("score" in r["detail"] for r in rejected)


def test_seeded_split_does_not_depend_on_listing_order(tmp_path):
    root = small_folder(tmp_path / "music")
    items = [Item(str(root / rel), rel, {}) for rel in NAMES]
    kw = {"name": "t", "tasks": {}, "sample_rate": 8000, "seed": 3, "progress": False, "clips_per_shard": 4}
    a = prepare_items(items, tmp_path / "a", **kw)
    b = prepare_items(items[::-1], tmp_path / "b", **kw)
    assert digests(tmp_path / "a") == digests(tmp_path / "b") and a["splits"] == b["splits"]
    # A clip keeps its split when other files come and go.
    c = prepare_items(items[::2], tmp_path / "c", **kw)
    split_of = {rid: split for rid, (split, _) in clips(tmp_path / "a").items()}
    assert all(split_of[rid] == split for rid, (split, _) in clips(tmp_path / "c").items())
    assert sum(s["clips"] for s in c["splits"].values()) == 6
    # Another seed, another split (with 12 clips, some clip moves).
    d = prepare_items(items, tmp_path / "d", **{**kw, "seed": 4})
    assert d["splits"] != a["splits"] or digests(tmp_path / "d") != digests(tmp_path / "a")


def test_items_are_checked_before_anything_is_written(tmp_path):
    path = str(small_folder(tmp_path / "music", ["x.wav"]) / "x.wav")
    tasks = {"genre": {"kind": "single", "classes": ["a", "b"]}, "tags": {"kind": "multi", "classes": ["t"]}}
    bad = [
        Item(path, "x", {"genre": 2, "tags": []}),  # index out of range
        Item(path, "x", {"genre": 0, "tags": 0}),  # multi-label needs a list
        Item(path, "x", {"mood": 0}),  # unknown task
        Item(path, "x", {"genre": 0, "tags": []}, split="dev"),
    ]
    for item in bad:
        with pytest.raises(PrepareError):
            prepare_items([item], tmp_path / "out", name="t", tasks=tasks, sample_rate=8000, progress=False)
    with pytest.raises(PrepareError, match="unique"):
        prepare_items([Item(path, "x", {})] * 2, tmp_path / "out", name="t", tasks={}, sample_rate=8000)
    assert not (tmp_path / "out").exists()


def test_refuses_shards_it_did_not_plan(tmp_path):
    root = small_folder(tmp_path / "music")
    out = tmp_path / "out"
    prepare_folder(root, out, sample_rate=8000, progress=False)
    assert prepare_folder(root, out, sample_rate=8000, progress=False) == records.read_manifest(out)
    with pytest.raises(FileExistsError, match="another --out"):
        prepare_folder(root, out, sample_rate=8000, seed=1, progress=False)
    (out / records.MANIFEST).unlink()
    with pytest.raises(FileExistsError, match="no manifest"):
        prepare_folder(root, out, sample_rate=8000, progress=False)


def test_cli_reports_a_bad_labels_file_in_one_line(tmp_path):
    root = small_folder(tmp_path / "music", ["x.wav"])
    (tmp_path / "labels.csv").write_text("name,genre\nx.wav,rock\n")
    result = run_cli("--in", root, "--out", tmp_path / "out", "--labels", tmp_path / "labels.csv")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        f"jaxmusic: error: {tmp_path / 'labels.csv'}: a labels CSV needs a header row with a path column"
    )
    assert "--path-column" in line and line.endswith("its header: name, genre")


# --- the process pool dies with its parent; a full disk stops cleanly ------------------


def _descendants(pid):
    """Every live process below `pid` (from /proc; Linux)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in os.listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    children = [int(c) for c in fh.read().split()]
            except FileNotFoundError:
                continue
            found += children
            todo += children
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_parent_takes_its_workers_with_it(tmp_path):
    root = tmp_path / "music"
    for i in range(40):
        put(root / f"{i:02d}.wav", tone(RATE, 10.0, 200 + 17 * i), rate=RATE, subtype="PCM_16")
    cmd = [sys.executable, "-m", "jaxmusic.cli", "prepare", "folder", "--in", str(root)]
    cmd += ["--out", str(tmp_path / "out"), "--workers", "2", "--clips-per-shard", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        workers = [pid for pid in _descendants(proc.pid) if _alive(pid)]
        if len(workers) >= 2 and list((tmp_path / "out").glob("*.array_record")):
            break  # the pool has delivered results and is decoding more
        time.sleep(0.01)
    assert proc.poll() is None, "prepare finished before it could be killed"
    proc.kill()
    proc.wait()
    deadline = time.time() + 5
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leave them behind for the rest of the suite
        os.kill(pid, 9)
    assert not left, f"{len(left)} worker processes outlived their parent"


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["jaxmusic", *sys.argv[1:]]
from jaxmusic.cli import main
main()
"""


def run_with_full_disk(limit, *args):
    """`jaxmusic ARGS` where no file may grow past `limit` bytes, as on a full disk."""
    code = FULL_DISK.format(limit=limit)
    cmd = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def assert_one_error_line(stderr, *parts):
    """The run failed with one `jaxmusic: error:` line holding `parts` (beside its
    progress bar), no traceback."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if "jaxmusic: error:" in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("jaxmusic: error: ") and all(p in lines[0] for p in parts), stderr


def test_full_disk_leaves_finished_shards_and_one_line(tmp_path):
    root = tmp_path / "music"
    for i in range(12):
        put(root / f"a{i:02d}.wav", tone(RATE, 0.6, 200 + 17 * i), rate=RATE, subtype="PCM_16")
    put(root / "zz_long.wav", tone(RATE, 8.0, 300), rate=RATE, subtype="PCM_16")
    args = ["--in", root, "--sample-rate", RATE, "--clips-per-shard", 2]
    whole = tmp_path / "whole"
    assert run_cli(*args, "--out", whole).returncode == 0
    out = tmp_path / "out"
    # Short shards (128 kB files) fit; the one holding the 8 s file (320 kB) does not.
    full = run_with_full_disk(200_000, "prepare", "folder", *args, "--out", out, "--workers", 2)
    assert full.returncode == 2, full.stderr
    assert_one_error_line(full.stderr, "no space left writing ", "free space and re-run the same command")
    assert not list(out.glob("*.partial")) and not list(out.rglob("*.tmp"))
    assert not (out / records.MANIFEST).exists()
    done = digests(out)
    assert done and all(digests(whole)[name] == sha for name, sha in done.items())
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}
    again = run_cli(*args, "--out", out)
    assert again.returncode == 0, again.stderr
    assert digests(out) == digests(whole)
    assert all((out / name).stat().st_mtime_ns == mtimes[name] for name in done)


# --- datasets as users have them: links, copies, odd names, options, summaries ----------


def rejections(out):
    return {
        r["path"]: (r["reason"], r["detail"])
        for r in map(json.loads, (out / REJECTED).read_text().splitlines())
    }


def test_a_file_reached_twice_is_one_clip(tmp_path):
    root = small_folder(tmp_path / "music", ["a.wav", "z.wav"])
    os.symlink(root / "z.wav", root / "b_link.wav")
    os.link(root / "z.wav", root / "c_hard.wav")
    manifest = prepare_folder(root, tmp_path / "out", sample_rate=8000, progress=False)
    assert set(clips(tmp_path / "out")) == {"a.wav", "b_link.wav"}  # the first by clip id is kept
    assert manifest["rejected"] == 2
    assert rejections(tmp_path / "out") == {
        str(root / "c_hard.wav"): ("duplicate_file", "the same file as b_link.wav"),
        str(root / "z.wav"): ("duplicate_file", "the same file as b_link.wav"),
    }
    assert manifest["source"]["duplicate_content"] == 0  # links are not copies


def _names_in_other_splits(seed=0):
    """Two clip ids whose seeded splits differ."""
    first = "orig.wav"
    for i in range(100):
        other = f"copy{i}.wav"
        if assign_split(other, seed) != assign_split(first, seed):
            return first, other
    raise AssertionError


def test_copies_share_a_split_or_are_rejected(tmp_path):
    first, other = _names_in_other_splits()
    root = small_folder(tmp_path / "music", [first, "x.wav"])
    (root / other).write_bytes((root / first).read_bytes())
    manifest = prepare_folder(root, tmp_path / "seeded", sample_rate=8000, progress=False)
    found = clips(tmp_path / "seeded")
    assert set(found) == {first, other, "x.wav"} and found[first][0] == found[other][0]
    assert manifest["source"]["duplicate_content"] == 1

    # Labels splitting the copies apart: the one outside train is rejected.
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,split\n{first},test\n{other},train\nx.wav,valid\n")
    manifest = prepare_folder(
        root, tmp_path / "labelled", labels_file=str(labels), sample_rate=8000, progress=False
    )
    found = clips(tmp_path / "labelled")
    assert set(found) == {other, "x.wav"} and found[other][0] == "train"
    assert rejections(tmp_path / "labelled") == {
        str(root / first): (
            "duplicate_content",
            f"the same bytes as {other}, in train; this copy's split is test",
        )
    }
    assert manifest["source"]["split"] == "labels"


def test_unicode_names_match_in_either_normal_form(tmp_path):
    nfc, nfd = (unicodedata.normalize(form, "Déjà vu.wav") for form in ("NFC", "NFD"))
    root = small_folder(tmp_path / "music", [nfc, "x_" + nfd])
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,genre\n{nfd},pop\nx_{nfc},rock\n", encoding="utf-8")
    prepare_folder(root, tmp_path / "out", labels_file=str(labels), sample_rate=8000, progress=False)
    assert set(clips(tmp_path / "out")) == {nfc, "x_" + nfc}


def test_unsupported_format_is_named_even_when_unlisted(tmp_path):
    root = small_folder(tmp_path / "music", ["a.wav"])
    put(root / "song.m4a", b"\0\0\0\x20ftypM4A " + bytes(200))
    put(root / "other.wma", bytes(300))
    labels = tmp_path / "labels.csv"
    labels.write_text("path,genre\na.wav,rock\n")
    prepare_folder(root, tmp_path / "out", labels_file=str(labels), sample_rate=8000, progress=False)
    assert {p: r for p, (r, _) in rejections(tmp_path / "out").items()} == {
        str(root / "song.m4a"): "unsupported_format",
        str(root / "other.wma"): "unsupported_format",
    }


def cli(capsys, *args):
    """`jaxmusic prepare folder ARGS` in this process: (exit code, stdout lines, stderr)."""
    from jaxmusic.cli import main

    sys_argv = sys.argv
    sys.argv = ["jaxmusic", "prepare", "folder", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = sys_argv
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_cli_takes_a_file_label_split_csv_and_prints_a_summary(tmp_path, capsys):
    names = [f"{i}.wav" for i in range(6)]
    root = small_folder(tmp_path / "music", names)
    put(root / "bad.m4a", b"\0\0\0\x20ftypM4A " + bytes(200))
    labels = tmp_path / "labels.csv"
    rows = [f"{n},{'ab'[i % 2]},{i % 12},{('train', 'valid', 'test')[i % 3]}" for i, n in enumerate(names)]
    labels.write_text("file,label,tonic,split\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, lines, err = cli(capsys, "--in", root, "--out", out, "--labels", labels, "--sample-rate", 8000)
    assert code == 0, err
    assert lines[0].startswith(f"prepared {out}: train 2, valid 2, test 2 clips at 8000 Hz; 1 files rejected")
    assert "task label: single-label, 2 classes (inferred: text values)" in lines
    tonic = next(line for line in lines if line.startswith("task tonic:"))
    assert tonic.startswith("task tonic: single-label, 6 classes (inferred: 6 distinct integers")
    assert "--task tonic:regression" in tonic
    assert f"split: labels — the split column of {labels.name}" in lines
    assert lines[-1] == "rejected: unsupported_format 1"

    # --task picks, forces and renames; regression prints its range.
    out2 = tmp_path / "out2"
    code, lines, err = cli(
        capsys,
        "--in",
        root,
        "--out",
        out2,
        "--labels",
        labels,
        "--sample-rate",
        8000,
        "--task",
        "tonic:regression=key",
    )
    assert code == 0, err
    assert records.read_manifest(out2)["tasks"] == {"key": {"kind": "regression"}}
    assert "task key: regression, 0 to 5 (from --task)" in lines


def test_cli_split_option_and_path_column(tmp_path, capsys):
    root = small_folder(tmp_path / "music")
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tclip\tgenre\n" + "".join(f"{i}\t{n}\t{n[:4]}\n" for i, n in enumerate(NAMES)))
    out = tmp_path / "out"
    args = ["--in", root, "--out", out, "--labels", labels, "--sample-rate", 8000, "--path-column", "clip"]
    code, lines, err = cli(capsys, *args, "--split", "100/0/0", "--task", "genre")
    assert code == 0, err
    manifest = records.read_manifest(out)
    assert manifest["splits"]["train"]["clips"] == len(NAMES) and set(manifest["tasks"]) == {"genre"}
    assert manifest["source"]["split"] == "seeded" and "split: seeded — seeded 100/0/0 (seed 0)" in lines
    code, _, err = cli(capsys, *args, "--split", "80/x/10")
    assert code == 2 and err.strip().startswith("jaxmusic: error: --split '80/x/10'")


def test_nothing_kept_is_an_error_without_a_manifest(tmp_path, capsys):
    root = small_folder(tmp_path / "music", [f"song{i}.wav" for i in range(3)])
    labels = tmp_path / "labels.csv"
    labels.write_text("path,genre\nmusic/song0.wav,rock\nmusic/song1.wav,pop\n")
    out = tmp_path / "out"
    code, lines, err = cli(capsys, "--in", root, "--out", out, "--labels", labels)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "none of the 3 audio files matched the labels file" in err
    assert "'music/song0.wav'" in err and "relative to --in" in err
    assert not (out / records.MANIFEST).exists()

    # Every file rejected (silent): rejected.jsonl says why, no manifest, no shards.
    silent = tmp_path / "silent"
    for i in range(2):
        put(silent / f"{i}.wav", np.zeros(8000, np.float32), rate=8000)
    code, lines, err = cli(capsys, "--in", silent, "--out", out, "--sample-rate", 8000)
    assert code == 2
    assert_one_error_line(
        err, "nothing to prepare: all 2 files were rejected (silent 2)", str(out / REJECTED)
    )
    assert not (out / records.MANIFEST).exists() and not list(out.glob("*.array_record"))
    assert {r for r, _ in rejections(out).values()} == {"silent"}
    # Fixed, the same command runs.
    put(silent / "0.wav", tone(8000), rate=8000)
    code, lines, err = cli(capsys, "--in", silent, "--out", out, "--sample-rate", 8000)
    assert code == 0, err
    assert lines[-1] == "rejected: silent 1"
