import numpy as np
import pytest

from jaxmusic.data import records
from jaxmusic.data.pipeline import Inputs, train_dataset
from jaxmusic.data.sources import open_split, read_manifest
from jaxmusic.data.tfds_io import build_tfds


def test_prepared_dataset_round_trips_through_tfds(tiny_data, tmp_path):
    import tensorflow_datasets as tfds

    folder = build_tfds(tiny_data, tmp_path)
    # Readable by TFDS itself, without TensorFlow.
    source = tfds.builder_from_directory(str(folder)).as_data_source("valid")
    assert len(source) == 6
    ours = open_split(tiny_data, "valid")
    first = records.decode(ours[0])
    np.testing.assert_array_equal(np.asarray(source[0]["audio"]), first["audio"])

    # And readable back by jaxmusic as tfds:PATH, labels and all.
    spec = f"tfds:{folder}"
    manifest = read_manifest(spec)
    assert manifest["sample_rate"] == 8000
    assert manifest["tasks"] == records.read_manifest(tiny_data)["tasks"]
    assert {k: v["clips"] for k, v in manifest["splits"].items()} == {"train": 28, "valid": 6, "test": 6}
    back = records.decode(open_split(spec, "valid")[0])
    tempo = back["labels"].pop("tempo")
    assert tempo == np.float32(first["labels"].pop("tempo"))  # TFDS keeps floats as float32
    assert (
        back["labels"] == first["labels"]
        and back["id"] == first["id"]
        and back["caption"] == first["caption"]
    )
    np.testing.assert_array_equal(back["audio"], first["audio"])
    batch = next(iter(train_dataset(spec, "train", batch_size=4, crop_samples=729, inputs=Inputs(), seed=0)))
    assert batch["audio"].shape == (4, 2, 729)


def test_tfds_name_resolves_in_the_tfds_data_dir(tiny_data, tmp_path, monkeypatch):
    folder = build_tfds(tiny_data, tmp_path)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert read_manifest(f"tfds:{folder.parent.name}")["splits"]["valid"]["clips"] == 6
    assert read_manifest(f"tfds:{folder.parent.name}/1.0.0")["name"] == folder.parent.name
    with pytest.raises(records.RecordError, match="no TFDS dataset"):
        read_manifest("tfds:not_there")
