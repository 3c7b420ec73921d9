import numpy as np
import pytest

from jaxmusic.data import records
from jaxmusic.data.pipeline import Inputs, train_dataset
from jaxmusic.data.sources import open_split
from jaxmusic.data.subsets import select, split_index
from jaxmusic.prepare.synth import TAGS
from jaxmusic.prepare.synthetic import prepare_synth

INSTRUMENTS = TAGS[:6]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("subsets")
    # 400 clips of 3 s: the train split holds 280 clips = 14 minutes.
    prepare_synth(out, clips=400, seed=1, sample_rate=8000, duration_s=3.0, progress=False)
    return str(out)


def test_minute_budgets_are_nested_and_repeatable(data):
    picks = {m: select(data, "train", f"minutes:{m}", seed=4) for m in (1, 2, 5, 10)}
    for small, big in ((1, 2), (2, 5), (5, 10)):
        assert set(picks[small]["ids"]) < set(picks[big]["ids"])
    for m, pick in picks.items():
        assert m <= pick["minutes"] < m + 0.05  # the shortest prefix that reaches M minutes
    assert select(data, "train", "minutes:5", seed=4) == picks[5]
    assert select(data, "train", "minutes:5", seed=5)["ids"] != picks[5]["ids"]
    assert select(data, "train", "full", seed=0)["clips"] == 280
    with pytest.raises(ValueError, match="exceeds the split's 14.0 minutes"):
        select(data, "train", "minutes:20", seed=0)


def test_per_class_budgets_take_k_single_class_clips_per_class(data):
    index = split_index(data, "train")
    picks = {
        k: select(data, "train", f"per_class:tags:{k}", seed=0, classes=INSTRUMENTS[:4]) for k in (1, 2, 3)
    }
    assert set(picks[1]["ids"]) < set(picks[2]["ids"]) < set(picks[3]["ids"])
    for k, pick in picks.items():
        counts = np.zeros(4, int)
        for i in pick["indices"]:
            hits = [c for c in index[i]["labels"]["tags"] if c < 4]
            assert len(hits) == 1  # exactly one of the chosen classes
            counts[hits[0]] += 1
        assert counts.tolist() == [k] * 4
    with pytest.raises(ValueError, match="fewer than K=500"):
        select(data, "train", "per_class:tags:500", seed=0, classes=INSTRUMENTS[:4])
    with pytest.raises(ValueError, match="multi-label"):
        select(data, "train", "per_class:key:1", seed=0, classes=("C major",))


def test_the_pipeline_reads_only_the_budget(data):
    pick = select(data, "train", "minutes:1", seed=0)
    allowed = {records.decode_audio(r).tobytes() for r in _records(data, pick["indices"])}
    it = iter(train_dataset(data, "train", batch_size=4, crop_samples=24000, inputs=Inputs(num_views=1), seed=0,
                            indices=pick["indices"]))  # fmt: skip
    for _ in range(10):
        for view in next(it)["audio"][:, 0]:
            assert view.tobytes() in allowed


def _records(data, indices):
    source = open_split(data, "train")
    return [source[i] for i in indices]
