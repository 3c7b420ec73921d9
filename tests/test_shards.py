"""Shard layout and the checks made when a split is opened or read."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from array_record.python.array_record_module import ArrayRecordReader

from jaxmusic.data import records
from jaxmusic.data.pipeline import Inputs, train_dataset
from jaxmusic.data.sources import open_split
from jaxmusic.prepare import shards

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from corpus import legacy_copy


@pytest.fixture
def data(tiny_data, tmp_path):
    """A copy of the tiny dataset that a test may damage."""
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out)
    return out


def _shard(data, split="train"):
    return data / records.read_manifest(data)["splits"][split]["shards"][0]


def _batches(data_dir, n=3, **kw):
    args = {"batch_size": 4, "crop_samples": 729, "inputs": Inputs(), "seed": 0, **kw}
    it = iter(train_dataset(str(data_dir), "train", **args))
    return [next(it)["audio"] for _ in range(n)]


def test_shards_are_uncompressed_and_the_manifest_lists_their_sizes(tiny_data):
    reader = ArrayRecordReader(str(_shard(Path(tiny_data))))
    assert "uncompressed" in reader.writer_options_string()
    reader.close()
    split = records.read_manifest(tiny_data)["splits"]["train"]
    sizes = split["shard_sizes"]
    assert set(sizes) == set(split["shards"])
    assert sum(s["clips"] for s in sizes.values()) == split["clips"] == 28
    for name, size in sizes.items():
        assert (Path(tiny_data) / name).stat().st_size == size["bytes"]


def test_windows_across_chunk_boundaries_are_the_clips_samples(tmp_path):
    rate, chunk = 8000, shards.CHUNK_SAMPLES
    lengths = [3 * chunk + 17, chunk, 5, 0, 2 * chunk - 1]
    audio = [np.arange(n, dtype=np.int64).astype(np.int16) * (i + 1) for i, n in enumerate(lengths)]
    path = tmp_path / "s.array_record"
    recs = [records.encode(f"c{i}", a, rate, {"x": i}) for i, a in enumerate(audio)]
    assert shards.write_shard(path, recs) == len(recs)
    split = records.SplitReader([str(path)])
    assert len(split) == len(recs)
    for i, a in enumerate(audio):
        assert split[i] == recs[i]  # the whole record, as encoded
        assert split.num_samples(i) == len(a) and split.header(i)["labels"] == {"x": i}
        starts = [0, max(0, len(a) - 100), chunk - 3, 2 * chunk - 50, len(a) + 7]
        views = split.windows(i, starts, 100)
        for start, view in zip(starts, views, strict=True):
            want = np.zeros(100, np.int16)
            part = a[start : start + 100]
            want[: len(part)] = part  # past the end: zeros
            np.testing.assert_array_equal(view, want)


def test_a_dataset_prepared_before_still_reads_and_gives_the_same_batches(tiny_data, tmp_path):
    old = legacy_copy(tiny_data, tmp_path / "old")
    assert records.read_manifest(old)["schema_version"] == 1
    assert "zstd" in ArrayRecordReader(str(_shard(Path(old)))).writer_options_string()
    assert list(open_split(str(old), "valid")) == list(open_split(tiny_data, "valid"))
    for a, b in zip(_batches(old), _batches(tiny_data), strict=True):
        np.testing.assert_array_equal(a, b)


def test_crop_samples_must_be_positive(tiny_data):
    with pytest.raises(ValueError, match="crop_samples must be positive"):
        train_dataset(tiny_data, "train", batch_size=4, crop_samples=0, inputs=Inputs(), seed=0)


# --- damaged datasets: refused in one line that names the file and what to do -----------


def _refused(data, match, split="train"):
    with pytest.raises(records.RecordError, match=match) as e:
        open_split(str(data), split)
    assert "\n" not in str(e.value) and "jaxmusic prepare" in str(e.value)
    return str(e.value)


def test_invalid_or_incomplete_manifest_is_named(data):
    path = data / records.MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(path.read_text()[:-20])
    _refused(data, r"manifest.json: not valid JSON")
    for drop in ("splits", "sample_rate", "tasks"):
        path.write_text(json.dumps({k: v for k, v in manifest.items() if k != drop}))
        _refused(data, f"no '{drop}'")
    broken = json.loads(json.dumps(manifest))
    del broken["splits"]["train"]["shards"]
    path.write_text(json.dumps(broken))
    _refused(data, r"split 'train' has no 'shards'")


def test_missing_shard_is_named(data):
    shard = _shard(data)
    shard.unlink()
    _refused(data, f"{shard.name}.*missing")


def test_truncated_shard_is_named(data):
    shard = _shard(data)
    shard.write_bytes(shard.read_bytes()[:-1000])
    _refused(data, f"{shard.name}.*truncated")


def test_shard_with_fewer_clips_than_the_manifest_says_is_named(data):
    shard = _shard(data)
    kept = list(open_split(str(data), "train"))[:-3]
    shards.write_shard(shard, kept)
    _refused(data, f"{shard.name}")


def test_legacy_shard_with_fewer_records_is_named(tiny_data, tmp_path):
    old = Path(legacy_copy(tiny_data, tmp_path / "old"))
    manifest = json.loads((old / records.MANIFEST).read_text())
    manifest["splits"]["train"]["clips"] += 2
    (old / records.MANIFEST).write_text(json.dumps(manifest))
    _refused(old, "holds 28 clips, the manifest says 30")


def test_corrupt_shard_names_the_file_and_record_when_read(data):
    shard = _shard(data)
    raw = bytearray(shard.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(255 - b for b in raw[middle : middle + 64])
    shard.write_bytes(bytes(raw))
    source = open_split(str(data), "train")  # sizes still match: only reading can tell
    with pytest.raises(records.RecordError, match=f"{shard.name}: record \\d+ .*damaged") as e:
        for i in range(len(source)):
            source[i]
    assert "\n" not in str(e.value) and "jaxmusic prepare" in str(e.value)
    with pytest.raises(records.RecordError, match=f"{shard.name}: record \\d+"):
        _batches(data, n=8)
