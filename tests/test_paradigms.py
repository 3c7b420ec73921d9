"""Every shipped config's `:runlocal` variant trains, and every objective learns
something a random-init encoder does not. Slow (minutes): run by .ci/run with -m slow."""

import numpy as np
import pytest
from conftest import start_cli

from jaxmusic import config as config_lib
from jaxmusic.evaluate.embed import write_embeddings
from jaxmusic.evaluate.probe import ProbeConfig
from jaxmusic.evaluate.report import probe_all
from jaxmusic.prepare.synthetic import prepare_synth
from jaxmusic.train.metrics_log import read_metrics
from jaxmusic.train.trainer import train_and_evaluate

pytestmark = pytest.mark.slow

RUNLOCAL = [
    # quickstart, supervised_samplecnn and mule_contrastive train (and their losses are
    # checked) in test_each_objective_beats_random_init_on_a_synthetic_task below.
    "configs/clmr_samplecnn.py:runlocal",
    "configs/supervised_fcn.py:runlocal",
    "configs/supervised_musicnn.py:runlocal",
    "configs/supervised_shortchunk_cnn.py:runlocal",
    "configs/supervised_shortchunk_resnet.py:runlocal",
    "configs/limited_data_cnn.py:vggish,supervised,runlocal",
    "configs/limited_data_cnn.py:vggish,contrastive,runlocal",
    "configs/limited_data_cnn.py:musicnn,supervised,runlocal",
    "configs/limited_data_cnn.py:musicnn,contrastive,runlocal",
    # limited_data_transformer.py's runlocal variants are these two's (runlocal_transformer),
    # checked to load and suit their encoder in tests/test_transformer_configs.py.
    "configs/ast_supervised.py:runlocal",
    # mae_transformer, mulap and muscall train (and their losses are checked) in the
    # tests below and in tests/test_language_eval.py.
]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> str:
    """The synthetic music every `:runlocal` config trains on (see config.runlocal)."""
    out = tmp_path_factory.mktemp("runlocal_synth")
    prepare_synth(out, clips=240, seed=0, sample_rate=8000, duration_s=4.0, progress=False)
    return str(out)


def load(spec: str, data: str, steps: int):
    c = config_lib.load(spec, [f"--config.data.dir={data}", "--config.progress_bar=False"])
    c.total_steps = steps
    c.log_every_steps = 5
    c.checkpoint_every_steps = steps
    return c


@pytest.mark.parametrize("spec", RUNLOCAL)
def test_runlocal_config_trains_and_its_loss_decreases(spec, synth_data, tmp_path):
    c = load(spec, synth_data, 30)
    train_and_evaluate(c, tmp_path)
    losses = [row["loss"] for _, row in sorted(read_metrics(tmp_path).items())]
    assert len(losses) == 6 and np.all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses  # mean of steps 26-30 below that of steps 1-5


def probe_scores(config, workdir, out) -> dict[str, float]:
    emb = write_embeddings(config, workdir, out, seed=0, progress=False)
    return {t: r["value"] for t, r in probe_all(emb, config=ProbeConfig(max_epochs=100)).items()}


@pytest.mark.parametrize(
    "spec, steps",
    [
        ("configs/quickstart.py:runlocal", 60),  # simclr
        ("configs/supervised_samplecnn.py:runlocal", 120),  # supervised: slower to start on raw audio
        ("configs/mule_contrastive.py:runlocal", 60),  # mule
    ],
)
def test_each_objective_beats_random_init_on_a_synthetic_task(spec, steps, synth_data, tmp_path):
    c = load(spec, synth_data, steps)
    train_and_evaluate(c, tmp_path / "train")
    losses = [row["loss"] for _, row in sorted(read_metrics(tmp_path / "train").items())]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    trained = probe_scores(c, tmp_path / "train", tmp_path / "trained")
    random = probe_scores(c, None, tmp_path / "random")
    gains = {t: trained[t] - random[t] for t in trained}
    print(spec, {t: (round(random[t], 3), round(trained[t], 3)) for t in trained})
    assert max(gains.values()) > 0.02, gains


def test_mulap_backbone_beats_random_init_on_two_synthetic_tasks(synth_data, tmp_path):
    # The proxy tasks need a few hundred steps to start (configs/mulap.py:runlocal trains 300).
    c = load("configs/mulap.py:runlocal", synth_data, 300)
    train_and_evaluate(c, tmp_path / "train")
    losses = [row["loss"] for _, row in sorted(read_metrics(tmp_path / "train").items())]
    assert losses[-1] < losses[0], losses
    trained = probe_scores(c, tmp_path / "train", tmp_path / "trained")
    random = probe_scores(c, None, tmp_path / "random")
    gains = {t: trained[t] - random[t] for t in trained}
    print("mulap", {t: (round(random[t], 3), round(trained[t], 3)) for t in trained})
    assert sum(g > 0.02 for g in gains.values()) >= 2, gains


def test_masked_transformer_loss_falls_and_its_encoder_embeds(synth_data, tmp_path):
    spec = "configs/mae_transformer.py:runlocal"
    c = load(spec, synth_data, 60)
    train_and_evaluate(c, tmp_path / "w")
    losses = [row["loss"] for _, row in sorted(read_metrics(tmp_path / "w").items())]
    print("mae reconstruction loss", [round(x, 3) for x in losses])
    assert losses[-1] < 0.9 * losses[0], losses
    proc = start_cli(
        "embed", "--config", spec, f"--config.data.dir={synth_data}", "--workdir", str(tmp_path / "w"),
        "--out", str(tmp_path / "emb"),
    )  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    test = np.load(tmp_path / "emb" / "test.npz")
    width = c.model.spectrogram_transformer.width
    assert test["clip_embeddings"].shape[1] == width and np.isfinite(test["clip_embeddings"]).all()
