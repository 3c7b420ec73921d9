import numpy as np
import pytest

from jaxmusic.data import records


def test_roundtrip_keeps_audio_labels_and_caption():
    audio = np.linspace(-1, 1, 1000, dtype=np.float32)
    rec = records.encode("a", audio, 8000, {"style": 2, "tags": [0, 3], "tempo": 120.5}, "A tune.")
    out = records.decode(rec)
    assert out["id"] == "a" and out["sample_rate"] == 8000 and out["caption"] == "A tune."
    assert out["labels"] == {"style": 2, "tags": [0, 3], "tempo": 120.5}
    assert out["audio"].dtype == np.int16 and out["audio"][0] == -32767 and out["audio"][-1] == 32767
    np.testing.assert_array_equal(records.decode_audio(rec), out["audio"])


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda r: r[:-2], "truncated"),
        (lambda r: b"XXXX" + r[4:], "magic"),
        (lambda r: r[:4] + (9).to_bytes(2, "little") + r[6:], "schema version 9"),
        (lambda r: r[:5], "shorter"),
    ],
)
def test_damaged_records_are_refused(mangle, message):
    rec = records.encode("a", np.zeros(100, np.int16), 8000, {})
    with pytest.raises(records.RecordError, match=message):
        records.decode(mangle(rec))


def test_missing_manifest_says_how_to_prepare(tmp_path):
    with pytest.raises(records.RecordError, match="jaxmusic prepare synth"):
        records.read_manifest(tmp_path)
