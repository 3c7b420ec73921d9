import numpy as np

from jaxmusic.data import records
from jaxmusic.data.pipeline import Inputs, train_dataset
from jaxmusic.data.sources import open_split


def _dataset(data_dir, **kw):
    args = {"batch_size": 4, "crop_samples": 729, "inputs": Inputs(), "seed": 0}
    args.update(kw)
    return train_dataset(data_dir, "train", **args)


def test_batches_are_crops_of_real_clips(tiny_data):
    batch = next(iter(_dataset(tiny_data)))
    assert batch["audio"].shape == (4, 2, 729) and batch["audio"].dtype == np.int16
    clips = [records.decode_audio(open_split(tiny_data, "train")[i]) for i in range(28)]
    for example in batch["audio"]:
        for view in example:
            # Each view is a contiguous window of one of the split's clips.
            assert any(
                np.array_equal(view, c[s : s + 729])
                for c in clips
                for s in np.flatnonzero(c[: len(c) - 728] == view[0])
            )
        assert not np.array_equal(example[0], example[1])  # independent crops


def test_same_seed_same_stream_and_seed_changes_it(tiny_data):
    a = [next(it)["audio"] for it in [iter(_dataset(tiny_data))] for _ in range(3)]
    b = [next(it)["audio"] for it in [iter(_dataset(tiny_data))] for _ in range(3)]
    c = next(iter(_dataset(tiny_data, seed=1)))["audio"]
    for x, y in zip(a, b, strict=False):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c)


def test_iterator_state_restores_the_exact_next_batches(tiny_data):
    it = iter(_dataset(tiny_data))
    for _ in range(9):  # past one epoch of 28 clips
        next(it)
    state = it.get_state()
    expected = [next(it)["audio"] for _ in range(4)]
    fresh = iter(_dataset(tiny_data))
    fresh.set_state(state)
    for want in expected:
        np.testing.assert_array_equal(next(fresh)["audio"], want)


def test_processes_read_contiguous_blocks_of_the_global_batch(tiny_data):
    whole = iter(_dataset(tiny_data, batch_size=8))
    parts = [iter(_dataset(tiny_data, batch_size=4, process_index=p, process_count=2)) for p in range(2)]
    for _ in range(5):  # across an epoch boundary (28 clips)
        joined = np.concatenate([next(part)["audio"] for part in parts])
        np.testing.assert_array_equal(joined, next(whole)["audio"])


def test_multiprocess_workers_resume_exactly(tiny_data):
    it = iter(_dataset(tiny_data, worker_count=2))
    try:
        for _ in range(3):
            next(it)
        state = it.get_state()
        expected = [next(it)["audio"] for _ in range(3)]
    finally:
        it.close()
    fresh = iter(_dataset(tiny_data, worker_count=2))
    try:
        fresh.set_state(state)
        for want in expected:
            np.testing.assert_array_equal(next(fresh)["audio"], want)
    finally:
        fresh.close()
