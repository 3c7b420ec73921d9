"""Grain input pipelines over prepared ArrayRecord shards.

Training: clip indices -> seeded shuffle, a new order each epoch, endless -> element
(random crops into views as the objective's `Inputs` ask, read from the shards chunk by
chunk, plus its tasks' labels and its caption's tokens) -> this process's block of each
global batch -> batch -> (multiprocess prefetch). Every process shuffles with the same
seed and reads only its block, so the processes together read each example of an epoch
exactly once, and the global batch, order and crops included, is the same whatever the
number of processes. Views stay int16 until they reach the device (half the bytes of
float32 over the host-to-device link).

This module must stay free of side effects at import: Grain's workers start with
"spawn" and import it afresh.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grain
import numpy as np

from jaxmusic.data import records
from jaxmusic.data.sources import open_split

if TYPE_CHECKING:  # audio-only pipelines never import the tokenizer library
    from jaxmusic.data.tokenizer import CaptionTokenizer


def cut(audio: np.ndarray, starts: Sequence[int], out: np.ndarray) -> np.ndarray:
    """Write into `out` [len(starts), length] the windows of `audio` from each start,
    zero-padded past its end; returns `out`."""
    length = out.shape[1]
    for v, s in enumerate(starts):
        part = audio[s : s + length]
        out[v, : len(part)] = part
        out[v, len(part) :] = 0
    return out


@dataclasses.dataclass(frozen=True)
class IndependentCrops:
    """`num_views` independent random windows of `crop_samples` from a clip (CLMR).

    Two windows of one track are a positive pair; a clip shorter than the window is
    zero-padded at the end.
    """

    crop_samples: int
    num_views: int

    def starts(self, n: int, rng: np.random.Generator) -> list[int]:
        """Where each view of a clip of `n` samples begins."""
        if n <= self.crop_samples:
            return [0] * self.num_views
        return [int(rng.integers(0, n - self.crop_samples + 1)) for _ in range(self.num_views)]

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        starts = self.starts(audio.shape[0], rng)
        return cut(audio, starts, np.zeros((len(starts), self.crop_samples), np.int16))


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

    def starts(self, n: int, rng: np.random.Generator) -> list[int]:
        """Where each of the two views of a clip of `n` samples begins."""
        if n <= self.crop_samples:
            return [0, 0]
        room = n - self.crop_samples
        lo, hi = min(self.min_gap, room), min(self.max_gap, room)
        gap = int(rng.integers(lo, max(lo, hi) + 1))
        first = int(rng.integers(0, room - gap + 1))
        return [first, first + gap] if rng.random() < 0.5 else [first + gap, first]

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        starts = self.starts(audio.shape[0], rng)
        return cut(audio, starts, np.zeros((len(starts), self.crop_samples), np.int16))


@dataclasses.dataclass(frozen=True)
class TextInputs:
    """Each clip's caption as `max_tokens` token ids ([CLS] and [SEP] included)."""

    tokenizer: CaptionTokenizer
    max_tokens: int


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What an objective asks the pipeline for: how to crop, which tasks' labels, and
    whether to tokenize captions.

    `crop` is "independent" (`num_views` random windows) or "gap" (two windows of
    one track, `min_gap`..`max_gap` samples apart). `tasks` name manifest tasks
    whose labels ride in the batch under `labels`; `text` puts each clip's caption,
    tokenized, under `text` ({"ids", "mask"}).
    """

    crop: str = "independent"
    num_views: int = 2
    min_gap: int = 0
    max_gap: int = 0
    tasks: tuple[str, ...] = ()
    text: TextInputs | None = None

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


def crop_rng(seed: int, position: int) -> np.random.Generator:
    """The generator of the crops of stream position `position`: keyed by the global
    position, so crops do not depend on batching, workers or the number of processes."""
    return np.random.Generator(np.random.Philox(key=np.array([seed % 2**64, position], np.uint64)))


@dataclasses.dataclass(frozen=True)
class MakeBatch:
    """(stream positions, clip indices) -> {"audio": int16 [batch, views, crop],
    "labels": {task: [batch, ...]}, "text": {"ids": int32 [batch, L], "mask": bool
    [batch, L]}}, labels and text only when asked for.

    On a chunked split (schema 2) only the chunks under the crops are read, and a
    header only when labels or text are asked for; otherwise each whole record is read
    once. Both give the same batch for the same clips and seed. Captions are tokenized
    here, in the data workers, a batch at a time.
    """

    source: Sequence[bytes]
    crop: IndependentCrops | GapCrops
    views: int
    tasks: tuple[tuple[str, dict[str, Any]], ...]  # (name, manifest task) pairs
    seed: int
    text: TextInputs | None = None

    def __call__(self, rows: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        positions, clips = rows
        source, length = self.source, self.crop.crop_samples
        chunked = isinstance(source, records.SplitReader) and source.chunked
        audio = np.zeros((len(clips), self.views, length), np.int16)
        labels: dict[str, list[np.ndarray]] = {name: [] for name, _ in self.tasks}
        captions: list[str] = []
        headers = bool(self.tasks) or self.text is not None
        for row, (position, clip) in enumerate(zip(positions.tolist(), clips.tolist(), strict=True)):
            rng = crop_rng(self.seed, position)
            header = None
            if chunked:
                starts = self.crop.starts(source.num_samples(clip), rng)
                source.windows(clip, starts, length, out=audio[row])
                if headers:
                    header = source.header(clip)
            else:
                record = source[clip]
                if headers:
                    header = records.decode(record)
                    whole = header["audio"]
                else:  # audio only: skip parsing the header
                    whole = records.decode_audio(record)
                cut(whole, self.crop.starts(len(whole), rng), audio[row])
            for name, task in self.tasks:
                value = header["labels"].get(name)
                if value is None:
                    raise ValueError(
                        f"clip {header['id']} has no '{name}' label: train on a split where every clip has one"
                    )
                labels[name].append(encode_label(task, value))
            if self.text is not None:
                if not header.get("caption"):
                    raise ValueError(
                        f"clip {header['id']} has no caption: train on a split where every clip has one"
                    )
                captions.append(header["caption"])
        batch: dict[str, Any] = {"audio": audio}
        if self.tasks:
            batch["labels"] = {name: np.stack(values) for name, values in labels.items()}
        if self.text is not None:
            ids, mask = self.text.tokenizer.encode(captions, self.text.max_tokens)
            batch["text"] = {"ids": ids, "mask": mask}
        return batch


def element_spec(inputs: Inputs, crop_samples: int, manifest: dict[str, Any]) -> dict[str, Any]:
    """Shapes and dtypes of one element (a batch row) as `MakeBatch` builds it (ShapeDtypeStructs)."""
    import jax  # only for the struct type; workers never call this

    spec: dict[str, Any] = {"audio": jax.ShapeDtypeStruct((inputs.views(), crop_samples), np.int16)}
    if inputs.tasks:
        spec["labels"] = {t: jax.ShapeDtypeStruct(*label_spec(manifest["tasks"][t])) for t in inputs.tasks}
    if inputs.text is not None:
        length = (inputs.text.max_tokens,)
        spec["text"] = {
            "ids": jax.ShapeDtypeStruct(length, np.int32),
            "mask": jax.ShapeDtypeStruct(length, np.bool_),
        }
    return spec


class ClipOrder(grain.MapDataset):
    """Stream position i -> (i, clip index): `clips` once in the order given (seed None),
    or endlessly, each epoch in its own seeded order.

    Epoch e's order is the permutation `default_rng([seed, e])` draws, computed once per
    epoch and process (O(n)): Grain's own `shuffle` evaluates an index permutation per
    element whose cost grows as the dataset shrinks (milliseconds per element below a
    few hundred clips), more than reading and cropping the clip.
    """

    def __init__(self, clips: Sequence[int], seed: int | None):
        super().__init__()
        self._clips, self._seed = np.asarray(clips, np.int64), seed
        self._orders: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clips) if self._seed is None else sys.maxsize

    def _order(self, epoch: int) -> np.ndarray:
        order = self._orders.get(epoch)
        if order is None:
            with self._lock:
                order = self._orders.get(epoch)
                if order is None:
                    rng = np.random.default_rng([self._seed % 2**64, epoch])
                    order = self._clips[rng.permutation(len(self._clips))]
                    # Prefetching threads straddle at most an epoch boundary: keep two.
                    self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
                    self._orders[epoch] = order
        return order

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        if self._seed is None:
            return index, int(self._clips[index])
        epoch, i = divmod(index, len(self._clips))
        return index, int(self._order(epoch)[i])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_orders"], state["_lock"] = {}, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return f"ClipOrder(clips={len(self._clips)}, seed={self._seed})"


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
    """An endless, checkpointable dataset of per-process batches (`MakeBatch` dicts).

    `batch_size` is this process's share of the global batch; `indices` restricts
    training to those records of the split (a limited-data budget, see subsets.py).
    Batches are dicts with `audio` int16 [batch, views, crop_samples] and, when
    `inputs` names tasks, `labels` {task: [batch, ...]}; when it asks for text, `text`
    {"ids": int32 [batch, max_tokens], "mask": bool [batch, max_tokens]}.
    """
    if crop_samples <= 0:
        raise ValueError(f"crop_samples must be positive, got {crop_samples}")
    source = open_split(data_dir, split)
    make = _make_batch(source, data_dir, inputs, crop_samples, seed)
    clips = range(len(source)) if indices is None else list(indices)
    if not len(clips):
        raise ValueError("a training subset must hold at least one clip")
    if len(clips) < process_count:
        raise ValueError(f"split '{split}' has {len(clips)} clips, fewer than {process_count} processes")
    ds = ProcessBlocks(ClipOrder(clips, seed), batch_size, process_index, process_count)
    # Whole batches are the unit of work from here on: one allocation, one task per
    # prefetching thread and one message per worker per batch, not per example.
    ds = ds.batch(batch_size, drop_remainder=True).map(make)
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4))
    if worker_count > 0:
        it = it.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=worker_count, per_worker_buffer_size=worker_buffer_size)
        )
    return it


def _make_batch(
    source: Sequence[bytes], data_dir: str, inputs: Inputs, crop_samples: int, seed: int
) -> MakeBatch:
    tasks: tuple[tuple[str, dict[str, Any]], ...] = ()
    if inputs.tasks:
        from jaxmusic.data.sources import read_manifest

        known = read_manifest(data_dir)["tasks"]
        tasks = tuple((t, known[t]) for t in inputs.tasks)
    return MakeBatch(source, inputs.cropper(crop_samples), inputs.views(), tasks, seed, inputs.text)


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
    if crop_samples <= 0:
        raise ValueError(f"crop_samples must be positive, got {crop_samples}")
    source = open_split(data_dir, split)
    make = _make_batch(source, data_dir, inputs, crop_samples, seed)
    ds = ProcessBlocks(ClipOrder(range(len(source)), None), batch_size, process_index, process_count)
    return ds.batch(batch_size, drop_remainder=True).map(make).to_iter_dataset()
