import sys
from pathlib import Path

import numpy as np
import pytest

from jaxmusic.data import records
from jaxmusic.data.pipeline import Inputs, TextInputs, element_spec, eval_dataset, train_dataset
from jaxmusic.data.sources import open_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from corpus import legacy_copy


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
    recs = _records(tiny_data)
    for row in range(4):
        rec = _record_of(batch["audio"][row, 0], recs)
        assert batch["labels"]["style"][row] == rec["labels"]["style"]
        assert np.flatnonzero(batch["labels"]["tags"][row]).tolist() == sorted(rec["labels"]["tags"])
        assert batch["labels"]["tempo"][row] == np.float32(rec["labels"]["tempo"])


def _records(data_dir):
    source = open_split(data_dir, "train")
    return [records.decode(source[i]) for i in range(len(source))]


def _record_of(view, recs):
    """The one record of which `view` is a window."""
    (rec,) = [
        r
        for r in recs
        if any(
            np.array_equal(view, r["audio"][s : s + len(view)]) for s in np.flatnonzero(r["audio"] == view[0])
        )
    ]
    return rec


@pytest.fixture(scope="module")
def text(tiny_data):
    from jaxmusic.data.tokenizer import split_captions, train_tokenizer

    return TextInputs(train_tokenizer(split_captions(tiny_data, "train"), 320), max_tokens=40)


def test_caption_tokens_ride_in_the_batch_and_decode_to_the_clips_caption(tiny_data, text):
    recs = _records(tiny_data)
    it = iter(_dataset(tiny_data, inputs=Inputs(num_views=1, text=text)))
    cut = 0
    for _ in range(7):  # one epoch of 28 clips
        batch = next(it)
        ids, mask = batch["text"]["ids"], batch["text"]["mask"]
        assert ids.shape == mask.shape == (4, 40) and ids.dtype == np.int32 and mask.dtype == bool
        for row in range(4):
            caption = _record_of(batch["audio"][row, 0], recs)["caption"]
            decoded = text.tokenizer.decode(ids[row][mask[row]])
            if mask[row, -1]:  # filled to max_tokens: maybe cut, so a prefix
                cut += decoded != caption
                assert caption.startswith(decoded)
            else:
                assert decoded == caption
    assert 0 < cut < 28  # both kinds were seen


def test_whole_record_layout_gives_the_same_caption_tokens(tiny_data, text, tmp_path):
    old = legacy_copy(tiny_data, tmp_path / "old")  # schema 1: MakeBatch decodes each whole record
    inputs = Inputs(num_views=1, text=text)
    a, b = (next(iter(_dataset(d, inputs=inputs))) for d in (old, tiny_data))
    np.testing.assert_array_equal(a["text"]["ids"], b["text"]["ids"])
    np.testing.assert_array_equal(a["audio"], b["audio"])


def test_element_spec_matches_the_text_batch(tiny_data, text):
    import jax

    from jaxmusic.data.sources import read_manifest

    inputs = Inputs(num_views=1, tasks=("style",), text=text)
    spec = element_spec(inputs, 729, read_manifest(tiny_data))
    for ds in (
        _dataset(tiny_data, inputs=inputs),
        eval_dataset(tiny_data, "valid", batch_size=2, crop_samples=729, inputs=inputs, seed=0),
    ):
        batch = next(iter(ds))
        assert jax.tree.structure(batch) == jax.tree.structure(spec)
        for got, want in zip(jax.tree.leaves(batch), jax.tree.leaves(spec), strict=True):
            assert got.shape[1:] == want.shape and got.dtype == want.dtype


def test_caption_tokens_through_a_spawned_worker(tiny_data, text):
    inputs = Inputs(num_views=1, text=text)
    local = iter(_dataset(tiny_data, inputs=inputs))
    want = [next(local) for _ in range(2)]
    it = iter(_dataset(tiny_data, inputs=inputs, worker_count=1))
    try:
        for expected in want:
            got = next(it)
            for key in ("ids", "mask"):
                np.testing.assert_array_equal(got["text"][key], expected["text"][key])
            np.testing.assert_array_equal(got["audio"], expected["audio"])
    finally:
        it.close()


def test_a_clip_without_a_caption_is_refused(tiny_data, text, tmp_path):
    from test_tokenizer import recaptioned

    data = recaptioned(tiny_data, tmp_path / "data", lambda i, c: None if i == 1 else c)
    inputs = Inputs(num_views=1, text=text)
    ds = eval_dataset(str(data), "train", batch_size=4, crop_samples=729, inputs=inputs, seed=0)
    with pytest.raises(ValueError) as e:
        next(iter(ds))
    assert str(e.value) == "clip synth-0-000001 has no caption: train on a split where every clip has one"
    # Audio alone still reads it.
    next(iter(eval_dataset(str(data), "train", batch_size=4, crop_samples=729, inputs=Inputs(), seed=0)))


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
