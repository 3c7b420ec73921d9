"""Grain input pipelines over prepared ArrayRecord shards.

Training: source -> seeded global shuffle -> repeat -> decode and random crops into
views -> this process's block of each global batch -> batch -> (multiprocess
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

import grain
import numpy as np

from jaxmusic.data import records
from jaxmusic.data.sources import open_split


@dataclasses.dataclass(frozen=True)
class CropViews:
    """Cut `num_views` independent random windows of `crop_samples` from a clip.

    CLMR takes each view's crop independently (two windows of one track are a
    positive pair); a clip shorter than the window is zero-padded at the end.
    """

    crop_samples: int
    num_views: int

    def __call__(self, record: bytes, rng: np.random.Generator) -> dict[str, np.ndarray]:
        audio = records.decode_audio(record)
        n = audio.shape[0]
        views = np.zeros((self.num_views, self.crop_samples), np.int16)
        for v in range(self.num_views):
            if n <= self.crop_samples:
                views[v, :n] = audio
            else:
                start = int(rng.integers(0, n - self.crop_samples + 1))
                views[v] = audio[start : start + self.crop_samples]
        return {"views": views}


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
        return len(self._parent) // self._n

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
    num_views: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    worker_count: int = 0,
    worker_buffer_size: int = 2,
    read_threads: int = 4,
    indices: Sequence[int] | None = None,
) -> grain.IterDataset:
    """An endless, checkpointable dataset of per-process batches of cropped views.

    `batch_size` is this process's share of the global batch; `indices` restricts
    training to those records of the split (a limited-data budget, see subsets.py).
    Batches are dicts with `views` int16 [batch, num_views, crop_samples].
    """
    source = open_split(data_dir, split)
    if indices is not None:
        source = SubsetSource(source, indices)
    if len(source) < process_count:
        raise ValueError(f"split '{split}' has {len(source)} clips, fewer than {process_count} processes")
    ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat(None)
    # Crop before taking this process's share: a MapDataset is lazy, so each process
    # still decodes only its own examples, but crop offsets are keyed by the global
    # stream position and do not change with the number of processes.
    ds = ds.random_map(CropViews(crop_samples, num_views))
    ds = ProcessBlocks(ds, batch_size, process_index, process_count)
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4 * batch_size)
    ).batch(batch_size, drop_remainder=True)
    if worker_count > 0:
        it = it.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=worker_count, per_worker_buffer_size=worker_buffer_size)
        )
    return it
