"""Language evaluation (evaluate/language.py): retrieval ranks and recall on hand-made
similarities with known answers; the batching, windows and figures on a stand-in
model whose answers are known; and a real (tiny) audio-text run evaluated by the
functions and by `jaxmusic language`, its tokenizer read from the workdir."""

import dataclasses
import json
import math
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic import cli, metrics
from jaxmusic import config as config_lib
from jaxmusic.config import ConfigError, base_config
from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.data.tokenizer import TOKENIZER_FILE, CaptionTokenizer
from jaxmusic.evaluate import language
from jaxmusic.evaluate import suite as suite_lib
from jaxmusic.evaluate.bench import Bench
from jaxmusic.prepare.synthetic import prepare_synth
from jaxmusic.train.metrics_log import read_metrics
from jaxmusic.train.trainer import train_and_evaluate

# ----------------------------------------------------------------------------- ranks


def test_ranks_recall_and_median_rank_on_a_hand_made_matrix() -> None:
    similarity = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.5], [0.1, 0.3, 0.2]])
    relevant = np.arange(3)
    # Query 0's item is first; query 1's has 0.8 and 0.5 above it; query 2's has 0.3 above.
    assert metrics.retrieval_ranks(similarity, relevant).tolist() == [1, 3, 2]
    assert metrics.median_rank(similarity, relevant) == 2.0
    assert [metrics.recall_at_k(similarity, relevant, k) for k in (1, 2, 3)] == [1 / 3, 2 / 3, 1.0]
    # A tie puts the later item ahead, as recall_at_k (and scikit-learn) does.
    tied = np.full((1, 3), 0.5)
    assert metrics.retrieval_ranks(tied, np.array([1])).tolist() == [2]
    assert metrics.recall_at_k(tied, np.array([1]), 1) == 0.0
    assert metrics.median_rank(np.eye(4), np.arange(4)) == 1.0
    assert metrics.median_rank(-np.eye(4), np.arange(4)) == 4.0  # every other item ahead
    with pytest.raises(ValueError, match="NaN"):
        metrics.median_rank(np.full((2, 2), np.nan), np.arange(2))


def test_recall_is_the_share_of_ranks_within_k_and_chance_is_what_random_scores_give() -> None:
    rng = np.random.default_rng(0)
    n, trials = 20, 400
    ranks = []
    for _ in range(trials):
        s = rng.normal(size=(n, n))
        r = metrics.retrieval_ranks(s, np.arange(n))
        for k in (1, 5, 10):
            assert metrics.recall_at_k(s, np.arange(n), k) == np.mean(r <= k)
        ranks.append(r)
    ranks = np.concatenate(ranks)
    figures, chance = language.retrieval_figures(rng.normal(size=(n, n)), n_boot=0)
    for k in (1, 5, 10):
        assert chance[f"recall@{k}"] == k / n
        assert np.mean(ranks <= k) == pytest.approx(k / n, abs=0.02)
    assert chance["median_rank"] == (n + 1) / 2
    assert np.mean(ranks) == pytest.approx((n + 1) / 2, abs=0.3)
    assert set(figures) == {"recall@1", "recall@5", "recall@10", "median_rank"}
    assert language.retrieval_figures(np.eye(3), n_boot=0)[1]["recall@10"] == 1.0  # k > N


# ----------------------------------------------------------------------------- a stand-in model


class ListTokenizer:
    """Each known text becomes one token: its index in `texts`."""

    def __init__(self, texts):
        self.texts = list(texts)

    def encode(self, texts, max_len):
        ids = np.zeros((len(texts), max_len), np.int32)
        ids[:, 0] = [self.texts.index(t) for t in texts]
        return ids, np.ones((len(texts), max_len), bool)


@dataclasses.dataclass(frozen=True)
class StandIn:
    """A language objective in miniature: clip features are the window itself (or its
    first `dim` samples), text features the one-hot of the text's index; scores a @ t.T."""

    tokenizer: ListTokenizer
    dim: int
    max_tokens: int = 2

    def audio_features(self, variables, audio):
        return audio[:, : self.dim] * variables["params"]["scale"]

    def text_features(self, variables, ids, mask):
        return jax.nn.one_hot(ids[:, 0], self.dim) * mask[:, :1]

    def pair_scores(self, variables, audio, text):
        return audio @ text.T


def test_scores_come_in_blocks_of_one_compiled_shape(compiles) -> None:
    rng = np.random.default_rng(0)
    scorer = language.Scorer(StandIn(ListTokenizer([]), 4), {"params": {"scale": jnp.float32(2.0)}}, 3)
    compiled = []
    for na, nt in ((7, 5), (2, 8)):
        a, t = rng.normal(size=(na, 4)).astype(np.float32), rng.normal(size=(nt, 4)).astype(np.float32)
        np.testing.assert_allclose(scorer.scores(a, t), a @ t.T, rtol=1e-6)
        compiled.append(len(compiles.events))
    assert compiled[0] > 0 and compiled[1] == compiled[0]  # other sizes, the same compiled block
    audio = rng.integers(-3000, 3000, (5, 6)).astype(np.int16)
    np.testing.assert_allclose(scorer.audio_features(audio), 2 * audio[:, :4] / 32768.0, rtol=1e-6)


def test_zero_shot_and_retrieval_give_the_known_answers_of_a_perfect_model() -> None:
    classes = ["bass_drum", "pad", "lead"]
    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]], np.float32)
    texts = language.prompts(classes)
    assert texts[0] == "a recording of bass drum music"
    captions = ["one", "two", None, "four"]
    tokenizer = ListTokenizer([*texts, "one", "two", "four"])
    scorer = language.Scorer(StandIn(tokenizer, 8), {"params": {"scale": jnp.float32(1.0)}}, 2)
    # Clip features that match their tags' prompts (columns 0-2) and their captions (3, 4, 5).
    audio = np.zeros((4, 8), np.float32)
    audio[:, :3] = labels
    audio[[0, 1, 3], [3, 4, 5]] = 10.0
    feats = language.SplitFeatures(
        "data", "test", ["a", "b", "c", "d"], captions,
        {"tags": labels, "style": np.array([0, 1, 2, 0])}, audio,
    )  # fmt: skip
    cell = language.zero_shot(scorer, feats, "tags", {"kind": "multi", "classes": classes}, n_boot=20)
    assert cell["metrics"]["roc_auc"]["value"] == 1.0 and cell["metrics"]["pr_auc"]["value"] == 1.0
    assert cell["chance"] == {"roc_auc": 0.5, "pr_auc": pytest.approx(np.mean([2 / 4, 2 / 4, 2 / 4]))}
    assert cell["n_test"] == 4 and cell["prompts"] == texts and cell["metric"] == "roc_auc"
    # One class each: the best-scoring prompt is a clip's first tag for these labels.
    feats_single = dataclasses.replace(feats, audio=np.eye(4, 8, dtype=np.float32)[[0, 1, 2, 0]])
    single = language.zero_shot(
        scorer, feats_single, "style", {"kind": "single", "classes": classes}, n_boot=0
    )
    assert single["metrics"]["accuracy"]["value"] == 1.0 and single["chance"] == {"accuracy": 1 / 3}
    cells = language.retrieval(scorer, feats, n_boot=20)
    assert [c["variant"]["direction"] for c in cells] == ["text-to-audio", "audio-to-text"]
    for c in cells:
        assert c["n_test"] == 3  # the clip without a caption is left out
        assert c["metrics"]["recall@1"]["value"] == 1.0 and c["metrics"]["median_rank"]["value"] == 1.0
        assert c["chance"]["recall@1"] == 1 / 3 and c["chance"]["median_rank"] == 2.0
    alone = dataclasses.replace(feats, captions=[None, "one", None, None])
    assert "at least 2" in language.retrieval(scorer, alone)[0]["skipped"]
    with pytest.raises(ConfigError, match="regression"):
        language.zero_shot(scorer, feats, "tempo", {"kind": "regression"})


def test_each_clip_is_heard_through_its_centred_window(tiny_data) -> None:
    source = open_split(tiny_data, "test")
    window = 5000  # of 8000-sample clips; and 9000, longer than every clip
    for w in (window, 9000):
        scorer = language.Scorer(
            StandIn(ListTokenizer([]), w), {"params": {"scale": jnp.float32(32768.0)}}, 3
        )
        feats = language.split_features(scorer, tiny_data, "test", w)
        assert len(feats.ids) == len(source) == len(feats.captions)
        for i in range(len(source)):
            rec = records.decode(source[i])
            start = language.centre_start(len(rec["audio"]), w)
            expected = np.zeros(w)
            piece = rec["audio"][start : start + w]
            expected[: len(piece)] = piece
            np.testing.assert_array_equal(feats.audio[i], expected)
            assert feats.ids[i] == rec["id"] and feats.captions[i] == rec["caption"]
        assert set(feats.labels) == {"style", "tags", "key"}  # the class and tag tasks
    assert language.centre_start(8000, 5000) == 1500 and language.centre_start(100, 5000) == 0


def test_prompts_need_one_tag_field() -> None:
    assert language.check_prompt("{tag} music") == "{tag} music"
    for bad in ("music", "{tag} {genre}", "{tag", "{}"):
        with pytest.raises(ConfigError, match="must hold"):
            language.check_prompt(bad)


# ----------------------------------------------------------------------------- a real run

# configs/muscall.py:runlocal with a SampleCNN and a one-layer text tower small enough
# to compile in seconds.
TINY_MUSCALL = [
    "--config.model.name=samplecnn",
    "--config.data.crop_samples=729",
    "--config.model.samplecnn.first_channels=8",
    "--config.model.samplecnn.block_channels=(8,8,16)",
    "--config.model.samplecnn.final_channels=16",
    "--config.objective.muscall.text.depth=1",
    "--config.objective.muscall.text.width=16",
    "--config.objective.muscall.text.heads=2",
    "--config.objective.muscall.text.mlp_dim=32",
    "--config.objective.muscall.embed_dim=16",
    "--config.batch_size=8",
    "--config.eval.every_steps=0",
    "--config.progress_bar=False",
]


def _in_range(cell) -> None:
    for name, f in cell["metrics"].items():
        assert math.isfinite(f["value"]), (name, f)
        high = cell["n_test"] if name == "median_rank" else 1.0
        lowest = 1.0 if name == "median_rank" else 0.0
        assert lowest <= f["value"] <= high and lowest <= f["ci_low"] <= f["ci_high"] <= high, (name, f)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny muscall run, trained for 3 steps on 40 captioned synthetic clips (~25 s on
    two CPU cores, most of it compiling the training step), shared by the tests below."""
    root = tmp_path_factory.mktemp("language_run")
    data = root / "data"
    prepare_synth(data, clips=40, seed=0, sample_rate=8000, duration_s=2.0, progress=False)
    c = config_lib.load("configs/muscall.py:runlocal", [f"--config.data.dir={data}", *TINY_MUSCALL])
    c.total_steps = c.checkpoint_every_steps = c.log_every_steps = 3
    train_and_evaluate(c, root / "run")
    return root / "run", data


def test_a_tiny_muscall_run_is_evaluated_with_its_own_tokenizer(
    tiny_run, tmp_path, capsys, monkeypatch
) -> None:
    work, data = tiny_run
    config, objective, variables = language.load_language_model(work)
    assert objective.tokenizer == CaptionTokenizer.load(work / TOKENIZER_FILE)
    assert config.objective.name == "muscall" and "text_proj" in variables["params"]
    results = language.evaluate_language(work, split="test", batch_size=4, n_boot=50)
    test_clips = 6  # 15 % of 40
    assert results["clips"] == results["captioned_clips"] == test_clips
    assert results["data_dir"] == str(data) and results["checkpoint_step"] == 3
    for cell in results["retrieval"].values():
        assert cell["n_test"] == test_clips and cell["chance"]["recall@1"] == 1 / test_clips
        _in_range(cell)
    assert set(results["zero_shot"]) == {"style", "tags", "key"}
    for cell in results["zero_shot"].values():
        _in_range(cell)
    assert results["zero_shot"]["key"]["chance"] == {"accuracy": 1 / 24}

    out = tmp_path / "lang" / "results.json"
    args = ["language", "--workdir", str(work), "--tasks", "style", "--out", str(out), "--batch-size", "4"]
    assert cli.run([*args, "--bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    assert (
        "| text-to-audio retrieval | recall@10 |" in printed and "| zero-shot style | accuracy |" in printed
    )
    written = json.loads(out.read_text())
    assert list(written["zero_shot"]) == ["style"] and written["retrieval"]["audio-to-text"]["n_test"] == 6

    # Refused in one line each: a run without a text tower, and one whose tokenizer is gone.
    simclr = tmp_path / "simclr"
    simclr.mkdir()
    records.write_json_atomic(simclr / "config.json", base_config().to_dict())
    gone = tmp_path / "gone"
    shutil.copytree(work, gone)
    (gone / TOKENIZER_FILE).unlink()
    for workdir, message in (
        (simclr, "objective.name=simclr, which has no text tower"),
        (gone, "no tokenizer.json"),
    ):
        monkeypatch.setattr(sys, "argv", ["jaxmusic", "language", "--workdir", str(workdir)])
        with pytest.raises(SystemExit) as exit_code:
            cli.main()
        err = capsys.readouterr().err
        assert exit_code.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_the_bench_runs_the_language_protocol_for_language_runs_only(tiny_run, tmp_path) -> None:
    work, data = tiny_run
    s = suite_lib.suite_schema()
    s.datasets = {"synth": suite_lib.dataset(str(data), tasks=("style", "tempo"))}
    s.embedders = {
        "muscall": suite_lib.embedder("checkpoint", workdir=str(work)),
        "random": suite_lib.embedder("random_init", config="configs/muscall.py:runlocal", overrides=tuple(
            o.removeprefix("--config.") for o in TINY_MUSCALL
        )),
    }  # fmt: skip
    s.protocols.full.enabled = False
    s.protocols.language.enabled = True
    s.bootstrap, s.progress_bar, s.embed_batch_size = 20, False, 4
    bench = Bench(s, tmp_path / "bench")
    # Retrieval and the class task for the language run; no tempo (regression), no random init.
    assert [(j.embedder, j.task) for j in bench.plan()] == [("muscall", "retrieval"), ("muscall", "style")]
    results = bench.run()
    assert not results["failed"]
    cells = {(c["task"], c["variant"].get("direction")): c for c in results["cells"]}
    assert set(cells) == {("retrieval", "text-to-audio"), ("retrieval", "audio-to-text"), ("style", None)}
    for cell in cells.values():
        assert cell["protocol"] == "language" and cell["n_test"] == 6
        _in_range(cell)
    report = (tmp_path / "bench" / "report.md").read_text()
    assert "## language" in report and "### synth / retrieval: recall@10" in report
    assert "### synth / style: accuracy" in report
    s.protocols.language.prompt = "no field"
    with pytest.raises(ConfigError, match="must hold"):
        Bench(s, tmp_path / "other")


@pytest.mark.slow
def test_runlocal_muscall_retrieves_captions_well_above_chance(tmp_path) -> None:
    # The config's own synthetic music (600 clips: 420 to train on, 90 held out for test).
    c = config_lib.load("configs/muscall.py:runlocal", ["--config.progress_bar=False"])
    data = tmp_path / "data"
    s = c.synth
    prepare_synth(
        data, clips=s.clips, seed=s.seed, sample_rate=s.sample_rate, duration_s=s.duration_s, progress=False
    )
    c.data.dir = str(data)
    train_and_evaluate(c, tmp_path / "run")
    losses = [row["loss"] for _, row in sorted(read_metrics(tmp_path / "run").items())]
    assert losses[-1] < losses[0], losses
    results = language.evaluate_language(tmp_path / "run", split="test")
    print(language.markdown(results))
    for cell in results["retrieval"].values():
        figures, chance = cell["metrics"], cell["chance"]
        assert figures["recall@10"]["value"] >= 3 * chance["recall@10"], cell
        assert figures["median_rank"]["value"] <= chance["median_rank"] / 3, cell
