import hashlib
import json

import numpy as np

from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.prepare import synth
from jaxmusic.prepare.synthetic import prepare_synth


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.array_record"))}


def test_manifest_and_records(tiny_data):
    manifest = records.read_manifest(tiny_data)
    assert manifest["schema_version"] == records.SCHEMA_VERSION
    assert {k: v["clips"] for k, v in manifest["splits"].items()} == {"train": 28, "valid": 6, "test": 6}
    assert manifest["tasks"]["key"]["kind"] == "single" and len(manifest["tasks"]["key"]["classes"]) == 24
    assert manifest["tasks"]["tempo"]["kind"] == "regression"
    rec = records.decode(open_split(tiny_data, "valid")[0])
    assert rec["num_samples"] == 8000 and rec["caption"]
    assert set(rec["labels"]) == set(manifest["tasks"])
    # The record holds exactly what the generator made (clip 28 is the first of valid).
    clip = synth.generate_clip(0, 28, sample_rate=8000, duration_s=1.0)
    np.testing.assert_allclose(rec["audio"] / 32767.0, clip.audio, atol=1 / 32767)


def test_deterministic_and_resumable(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    prepare_synth(a, clips=30, seed=3, sample_rate=8000, duration_s=0.5, progress=False)
    # An interrupted run: one shard finished, one left as a partial file, no manifest.
    prepare_synth(b, clips=30, seed=3, sample_rate=8000, duration_s=0.5, progress=False)
    (b / records.MANIFEST).unlink()
    victim = sorted(b.glob("valid-*.array_record"))[0]
    victim.rename(victim.with_name(victim.name + ".partial"))
    kept = sorted(b.glob("train-*.array_record"))[0]
    kept_mtime = kept.stat().st_mtime_ns
    prepare_synth(b, clips=30, seed=3, sample_rate=8000, duration_s=0.5, progress=False)
    assert _digest(a) == _digest(b)
    assert kept.stat().st_mtime_ns == kept_mtime  # finished shards are not redone
    m_a, m_b = (json.loads((d / records.MANIFEST).read_text()) for d in (a, b))
    assert m_a["splits"] == m_b["splits"]


def test_refuses_to_overwrite_a_different_dataset(tmp_path):
    prepare_synth(tmp_path, clips=10, seed=0, sample_rate=8000, duration_s=0.2, progress=False)
    try:
        prepare_synth(tmp_path, clips=10, seed=1, sample_rate=8000, duration_s=0.2, progress=False)
    except FileExistsError as e:
        assert "another --out" in str(e)
    else:
        raise AssertionError("a different dataset was written over an existing one")


def test_full_disk_fails_in_one_line_and_the_same_command_finishes(tmp_path):
    from test_prepare_folder import assert_one_error_line, run_with_full_disk

    args = ["prepare", "synth", "--clips", 30, "--seed", 3, "--sample-rate", 8000, "--duration", 0.5]
    out = tmp_path / "out"
    full = run_with_full_disk(50_000, *args, "--out", out)
    assert full.returncode == 2, full.stderr
    assert_one_error_line(full.stderr, "no space left writing ", "free space and re-run the same command")
    assert not list(out.glob("*.partial")) and not list(out.glob("*.tmp"))
    assert not (out / records.MANIFEST).exists()
    import subprocess
    import sys

    again = subprocess.run([sys.executable, "-m", "jaxmusic.cli", *map(str, args), "--out", str(out)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference"
    prepare_synth(reference, clips=30, seed=3, sample_rate=8000, duration_s=0.5, progress=False)
    assert _digest(out) == _digest(reference)
