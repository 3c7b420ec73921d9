"""TensorFlow Datasets interoperability, without TensorFlow.

Two directions, both in TFDS's array_record format (the one TFDS reads without TF):

- `build_tfds(data_dir, tfds_dir)`: a TFDS builder turns a jaxmusic-prepared dataset into
  a TFDS dataset (`tfds_dir/jaxmusic_NAME/1.0.0`), readable with
  `tfds.builder_from_directory(path).as_data_source(split)`.
- `TfdsSplit` / `tfds_manifest`: a TFDS array_record dataset the user already has is
  read as a jaxmusic dataset: pass `--config.data.dir=tfds:NAME` (found in
  $TFDS_DATA_DIR or ~/tensorflow_datasets, newest version) or `tfds:PATH` to a version
  folder, e.g. ~/tensorflow_datasets/my_music/1.0.0.

TFDS's `Audio` feature needs TensorFlow to construct, so audio is stored as an int16
`Tensor(shape=(None,))` with the sample rate in the dataset's metadata; a dataset read
through `tfds:` must have such an `audio` feature (int16, or float in [-1, 1]).
Labels: single-label tasks are `ClassLabel`s, multi-label ones multi-hot uint8
tensors, regression targets float32 scalars (TFDS serialises floats as float32).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxmusic.data import records

PREFIX = "tfds:"
VERSION = "1.0.0"


def _features(tasks: dict[str, Any]):
    import tensorflow_datasets as tfds

    labels = {}
    for name, task in tasks.items():
        if task["kind"] == "single":
            labels[name] = tfds.features.ClassLabel(names=[str(c) for c in task["classes"]])
        elif task["kind"] == "multi":
            labels[name] = tfds.features.Tensor(shape=(len(task["classes"]),), dtype=np.uint8)
        else:
            labels[name] = tfds.features.Scalar(dtype=np.float32)
    return tfds.features.FeaturesDict(
        {
            "id": tfds.features.Text(),
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "caption": tfds.features.Text(),
            "labels": tfds.features.FeaturesDict(labels),
        }
    )


def build_tfds(data_dir: str | Path, tfds_dir: str | Path) -> Path:
    """Write a jaxmusic-prepared dataset as a TFDS array_record dataset; returns its folder."""
    import tensorflow_datasets as tfds

    from jaxmusic.data.sources import open_split

    manifest = records.read_manifest(data_dir)
    tasks = manifest["tasks"]

    class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version(VERSION)
        name = f"jaxmusic_{manifest['name']}".lower().replace("-", "_")

        def _info(self) -> tfds.core.DatasetInfo:
            # Built directly: dataset_info_from_configs needs the builder in a package folder.
            return tfds.core.DatasetInfo(
                builder=self,
                description=f"jaxmusic dataset '{manifest['name']}' (schema {records.SCHEMA_VERSION})",
                features=_features(tasks),
                disable_shuffling=True,  # keep the prepared order, so indices mean the same clips
                metadata=tfds.core.MetadataDict(sample_rate=manifest["sample_rate"], tasks=tasks),
            )

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing is downloaded
            return {split: self._generate_examples(split) for split in manifest["splits"]}

        def _generate_examples(self, split: str):
            source = open_split(str(data_dir), split)
            for i in range(len(source)):
                rec = records.decode(source[i])
                labels = {}
                for name, task in tasks.items():
                    value = rec["labels"][name]
                    if task["kind"] == "multi":
                        hot = np.zeros(len(task["classes"]), np.uint8)
                        hot[value] = 1
                        value = hot
                    labels[name] = value
                yield (
                    rec["id"],
                    {
                        "id": rec["id"],
                        "audio": np.array(rec["audio"]),
                        "caption": rec["caption"] or "",
                        "labels": labels,
                    },
                )

    builder = Builder(data_dir=str(tfds_dir), file_format="array_record")
    builder.download_and_prepare()
    return Path(builder.data_dir)


def resolve(spec: str) -> Path:
    """The version folder of `spec`: a path to it, or NAME[/VERSION] in TFDS's data dir
    ($TFDS_DATA_DIR, else ~/tensorflow_datasets), the newest version when none is given."""
    folder = Path(spec).expanduser()
    if (folder / "dataset_info.json").is_file():
        return folder
    root = Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()
    named = root / spec
    if (named / "dataset_info.json").is_file():
        return named
    versions = sorted(
        (v for v in named.glob("*") if (v / "dataset_info.json").is_file()),
        key=lambda v: tuple(int(x) for x in v.name.split(".") if x.isdigit()),
    )
    if not versions:
        raise records.RecordError(
            f"{PREFIX}{spec}: no TFDS dataset there or in {root} (give the version folder holding "
            "dataset_info.json, or NAME with TFDS_DATA_DIR set)"
        )
    return versions[-1]


def _builder(path: str):
    import tensorflow_datasets as tfds

    folder = resolve(path)
    builder = tfds.builder_from_directory(str(folder))
    if builder.info.file_format.value != "array_record":
        raise records.RecordError(
            f"{PREFIX}{path} is in {builder.info.file_format.value} format; jaxmusic reads array_record "
            "(rebuild it with file_format='array_record')"
        )
    if "audio" not in builder.info.features:
        raise records.RecordError(f"{PREFIX}{path} has no 'audio' feature")
    return builder


def tfds_manifest(path: str) -> dict[str, Any]:
    """A jaxmusic manifest describing a TFDS array_record dataset."""
    import tensorflow_datasets as tfds

    builder = _builder(path)
    info = builder.info
    meta = dict(info.metadata or {})
    if "sample_rate" not in meta:
        raise records.RecordError(f"{PREFIX}{path}: its metadata has no sample_rate")
    tasks = meta.get("tasks")
    if tasks is None:  # a dataset not made by jaxmusic: derive tasks from its label features
        tasks = {}
        label_features = info.features["labels"] if "labels" in info.features.keys() else {}  # noqa: SIM118
        for name, feature in label_features.items():
            if isinstance(feature, tfds.features.ClassLabel):
                tasks[name] = {"kind": "single", "classes": feature.names}
            elif feature.shape == ():
                tasks[name] = {"kind": "regression"}
    return {
        "schema_version": records.SCHEMA_VERSION,
        "name": info.name,
        "sample_rate": int(meta["sample_rate"]),
        "splits": {
            name: {"shards": [], "clips": split.num_examples, "seconds": None}
            for name, split in info.splits.items()
        },
        "tasks": tasks,
        "source": {"kind": "tfds", "path": path},
    }


class TfdsSplit:
    """Random access to a TFDS split, each element re-encoded as a jaxmusic record."""

    def __init__(self, path: str, split: str):
        self._path, self._split = path, split
        manifest = tfds_manifest(path)
        self._rate, self._tasks = manifest["sample_rate"], manifest["tasks"]
        self._source = _builder(path).as_data_source(split)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, i: int) -> bytes:
        element = self._source[i]
        audio = np.asarray(element["audio"])
        labels = {}
        for name, task in self._tasks.items():
            value = element["labels"][name]
            if task["kind"] == "multi":
                labels[name] = np.flatnonzero(value).tolist()
            elif task["kind"] == "single":
                labels[name] = int(value)
            else:
                labels[name] = float(value)
        clip_id = element.get("id", f"{self._split}-{i}")
        caption = element.get("caption") or None
        return records.encode(
            clip_id.decode() if isinstance(clip_id, bytes) else str(clip_id),
            audio if audio.dtype == np.int16 else audio.astype(np.float32),
            self._rate,
            labels,
            caption.decode() if isinstance(caption, bytes) else caption,
        )

    def __getstate__(self) -> dict[str, str]:
        # Grain's worker processes rebuild the TFDS source rather than pickle it.
        return {"path": self._path, "split": self._split}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["path"], state["split"])
