"""Grain input pipelines over prepared ArrayRecord shards.

Training: source -> seeded global shuffle -> repeat -> element (random crops into
views as the objective's `Inputs` ask, plus its tasks' labels) -> this process's block of each global batch -> batch -> (multiprocess
prefetch). Every process shuffles with the same seed and reads only its block, so
the processes together read each example of an epoch exactly once, and the global
batch, order and crops included, is the same whatever the number of processes. Views stay int16 until they reach the
device (half the bytes of float32 over the host-to-device link).

This module must stay free of side effects at import: Grain's workers start with
"spawn" and import it afresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from jaxmusic.data import records
from jaxmusic.data.sources import open_split


@dataclasses.dataclass(frozen=True)
class IndependentCrops:
    """`num_views` independent random windows of `crop_samples` from a clip (CLMR).

    Two windows of one track are a positive pair; a clip shorter than the window is
    zero-padded at the end.
    """

    crop_samples: int
    num_views: int

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = audio.shape[0]
        views = np.zeros((self.num_views, self.crop_samples), np.int16)
        for v in range(self.num_views):
            if n <= self.crop_samples:
                views[v, :n] = audio
            else:
                start = int(rng.integers(0, n - self.crop_samples + 1))
                views[v] = audio[start : start + self.crop_samples]
        return views


@dataclasses.dataclass(frozen=True)
class GapCrops:
    """Two windows of one track whose starts lie `min_gap`..`max_gap` samples apart (MULE).

    The offset is drawn uniformly in [min_gap, min(max_gap, n - crop)], so a clip too
    short for `min_gap` gives its two farthest-apart windows; which window comes first
    is random, so neither view is always the earlier one.
    """

    crop_samples: int
    min_gap: int
    max_gap: int

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, t = audio.shape[0], self.crop_samples
        views = np.zeros((2, t), np.int16)
        if n <= t:
            views[:, :n] = audio
            return views
        room = n - t
        lo, hi = min(self.min_gap, room), min(self.max_gap, room)
        gap = int(rng.integers(lo, max(lo, hi) + 1))
        first = int(rng.integers(0, room - gap + 1))
        starts = (first, first + gap) if rng.random() < 0.5 else (first + gap, first)
        for v, s in enumerate(starts):
            views[v] = audio[s : s + t]
        return views


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What an objective asks the pipeline for: how to crop, and which tasks' labels.

    `crop` is "independent" (`num_views` random windows) or "gap" (two windows of
    one track, `min_gap`..`max_gap` samples apart). `tasks` name manifest tasks
    whose labels ride in the batch under `labels`.
    """

    crop: str = "independent"
    num_views: int = 2
    min_gap: int = 0
    max_gap: int = 0
    tasks: tuple[str, ...] = ()

    def cropper(self, crop_samples: int) -> IndependentCrops | GapCrops:
        """The crop transform for windows of `crop_samples`."""
        if self.crop == "independent":
            return IndependentCrops(crop_samples, self.num_views)
        if self.crop == "gap":
            return GapCrops(crop_samples, self.min_gap, self.max_gap)
        raise ValueError(f"unknown crop '{self.crop}' (known: independent, gap)")

    def views(self) -> int:
        """Views per element."""
        return 2 if self.crop == "gap" else self.num_views


def label_spec(task: dict[str, Any]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one element's label for a manifest task."""
    if task["kind"] == "single":
        return (), np.dtype(np.int32)
    if task["kind"] == "multi":
        return (len(task["classes"]),), np.dtype(np.float32)
    return (), np.dtype(np.float32)


def encode_label(task: dict[str, Any], value: Any) -> np.ndarray:
    """A record's label as an array: class index, multi-hot vector or float."""
    shape, dtype = label_spec(task)
    if task["kind"] == "multi":
        out = np.zeros(shape, dtype)
        out[list(value)] = 1.0
        return out
    return np.asarray(value, dtype)


@dataclasses.dataclass(frozen=True)
class MakeElement:
    """Record bytes -> {"audio": int16 [views, crop], "labels": {task: label}}."""

    crop: IndependentCrops | GapCrops
    tasks: tuple[tuple[str, dict[str, Any]], ...]  # (name, manifest task) pairs

    def __call__(self, record: bytes, rng: np.random.Generator) -> dict[str, Any]:
        if not self.tasks:  # audio only: skip parsing the header
            return {"audio": self.crop(records.decode_audio(record), rng)}
        rec = records.decode(record)
        labels = {}
        for name, task in self.tasks:
            if rec["labels"].get(name) is None:
                raise ValueError(
                    f"clip {rec['id']} has no '{name}' label: train on a split where every clip has one"
                )
            labels[name] = encode_label(task, rec["labels"][name])
        return {"audio": self.crop(rec["audio"], rng), "labels": labels}


def element_spec(inputs: Inputs, crop_samples: int, manifest: dict[str, Any]) -> dict[str, Any]:
    """Shapes and dtypes of one element as `MakeElement` builds it (ShapeDtypeStructs)."""
    import jax  # only for the struct type; workers never call this

    spec: dict[str, Any] = {"audio": jax.ShapeDtypeStruct((inputs.views(), crop_samples), np.int16)}
    if inputs.tasks:
        spec["labels"] = {t: jax.ShapeDtypeStruct(*label_spec(manifest["tasks"][t])) for t in inputs.tasks}
    return spec


class SubsetSource:
    """Random access to chosen records of a source, in the order given."""

    def __init__(self, source: Sequence[bytes], indices: Sequence[int]):
        if not len(indices):
            raise ValueError("a training subset must hold at least one clip")
        self._source, self._indices = source, list(indices)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> bytes:
        return self._source[self._indices[i]]


class ProcessBlocks(grain.MapDataset):
    """This process's contiguous block of every global batch of the stream.

    With local batch b and P processes, local example i is global example
    (i // b) * b * P + process_index * b + i % b. Process p's batch is then rows
    [p * b, (p + 1) * b) of the global batch, which is where
    `jax.make_array_from_process_local_data` puts it: the global batch, its order
    included, is the same for any number of processes.
    """

    def __init__(self, parent: grain.MapDataset, local_batch: int, process_index: int, process_count: int):
        super().__init__(parent)
        self._b, self._p, self._n = local_batch, process_index, process_count

    def __len__(self) -> int:
        # Whole global batches only: a finite parent's tail would map past its end.
        return len(self._parent) // (self._b * self._n) * self._b

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        block, offset = divmod(index, self._b)
        return self._parent[block * self._b * self._n + self._p * self._b + offset]

    def __str__(self) -> str:
        return f"ProcessBlocks(local_batch={self._b}, process={self._p}/{self._n})"


def train_dataset(
    data_dir: str,
    split: str,
    *,
    batch_size: int,
    crop_samples: int,
    inputs: Inputs,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    worker_count: int = 0,
    worker_buffer_size: int = 2,
    read_threads: int = 4,
    indices: Sequence[int] | None = None,
) -> grain.IterDataset:
    """An endless, checkpointable dataset of per-process batches of `MakeElement` dicts.

    `batch_size` is this process's share of the global batch; `indices` restricts
    training to those records of the split (a limited-data budget, see subsets.py).
    Batches are dicts with `audio` int16 [batch, views, crop_samples] and, when
    `inputs` names tasks, `labels` {task: [batch, ...]}.
    """
    source = open_split(data_dir, split)
    make = MakeElement(inputs.cropper(crop_samples), _tasks(data_dir, inputs))
    if indices is not None:
        source = SubsetSource(source, indices)
    if len(source) < process_count:
        raise ValueError(f"split '{split}' has {len(source)} clips, fewer than {process_count} processes")
    ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat(None)
    # Crop before taking this process's share: a MapDataset is lazy, so each process
    # still decodes only its own examples, but crop offsets are keyed by the global
    # stream position and do not change with the number of processes.
    ds = ds.random_map(make)
    ds = ProcessBlocks(ds, batch_size, process_index, process_count)
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4 * batch_size)
    ).batch(batch_size, drop_remainder=True)
    if worker_count > 0:
        it = it.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=worker_count, per_worker_buffer_size=worker_buffer_size)
        )
    return it


def _tasks(data_dir: str, inputs: Inputs) -> tuple[tuple[str, dict[str, Any]], ...]:
    if not inputs.tasks:
        return ()
    from jaxmusic.data.sources import read_manifest

    known = read_manifest(data_dir)["tasks"]
    return tuple((t, known[t]) for t in inputs.tasks)


def eval_dataset(
    data_dir: str,
    split: str,
    *,
    batch_size: int,
    crop_samples: int,
    inputs: Inputs,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> grain.IterDataset:
    """One pass over a split in stored order, crops drawn from `seed`: the same batches
    at every evaluation. Full global batches only (a remainder is dropped), so the
    step compiles once; `batch_size` is this process's share."""
    source = open_split(data_dir, split)
    make = MakeElement(inputs.cropper(crop_samples), _tasks(data_dir, inputs))
    ds = grain.MapDataset.source(source).seed(seed).random_map(make)
    ds = ProcessBlocks(ds, batch_size, process_index, process_count)
    return ds.to_iter_dataset().batch(batch_size, drop_remainder=True)
