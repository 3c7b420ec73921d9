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


def test_labels_of_the_named_tasks_ride_in_the_batch(tiny_data):
    from jaxmusic.data.sources import read_manifest

    tasks = ("style", "tags", "tempo")
    batch = next(iter(_dataset(tiny_data, inputs=Inputs(num_views=1, tasks=tasks))))
    assert set(batch) == {"audio", "labels"} and set(batch["labels"]) == set(tasks)
    assert batch["audio"].shape == (4, 1, 729)
    manifest = read_manifest(tiny_data)
    assert batch["labels"]["style"].dtype == np.int32 and batch["labels"]["style"].shape == (4,)
    assert batch["labels"]["tags"].shape == (4, len(manifest["tasks"]["tags"]["classes"]))
    assert set(np.unique(batch["labels"]["tags"])) <= {0.0, 1.0}
    assert batch["labels"]["tempo"].dtype == np.float32
    # Each label is its clip's: find the clip by its audio and compare with the record.
    source = open_split(tiny_data, "train")
    recs = [records.decode(source[i]) for i in range(len(source))]
    for row in range(4):
        view = batch["audio"][row, 0]
        (rec,) = [
            r
            for r in recs
            if any(
                np.array_equal(view, r["audio"][s : s + 729]) for s in np.flatnonzero(r["audio"] == view[0])
            )
        ]
        assert batch["labels"]["style"][row] == rec["labels"]["style"]
        assert np.flatnonzero(batch["labels"]["tags"][row]).tolist() == sorted(rec["labels"]["tags"])
        assert batch["labels"]["tempo"][row] == np.float32(rec["labels"]["tempo"])


def test_gap_crops_are_two_windows_of_one_clip_within_the_gap():
    from jaxmusic.data.pipeline import GapCrops

    audio = np.arange(10_000, dtype=np.int16)  # sample value = position
    crop = GapCrops(crop_samples=1000, min_gap=2000, max_gap=4000)
    rng = np.random.default_rng(0)
    firsts = []
    for _ in range(200):
        a, b = crop(audio, rng)
        assert np.array_equal(a, np.arange(a[0], a[0] + 1000)) and np.array_equal(
            b, np.arange(b[0], b[0] + 1000)
        )
        assert 2000 <= abs(int(a[0]) - int(b[0])) <= 4000
        firsts.append(a[0] < b[0])
    assert 0.3 < np.mean(firsts) < 0.7  # either window may come first
    # Too short for the minimum gap: the two farthest-apart windows.
    a, b = crop(audio[:2500], rng)
    assert {int(a[0]), int(b[0])} == {0, 1500}
