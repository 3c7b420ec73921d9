"""CLMR's PyTorch SampleCNN checkpoints convert to Flax variables that embed identically."""

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch
from conftest import start_cli

from jaxmusic.convert import clmr
from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.evaluate.embed import read_split
from jaxmusic.models import samplecnn
from jaxmusic.prepare import synth

nn = torch.nn

RATE = 22050
PAPER_SAMPLES = 59049  # 3^10


class TorchSampleCNN(nn.Module):
    """SampleCNN as the CLMR paper describes it, with CLMR's module names.

    `sequential` holds one nn.Sequential per stage: [conv, bn, relu] for the stride-3 stem
    and the final conv, [conv, bn, relu, maxpool] for each block; `fc` is the classifier
    head that CLMR swaps for an identity when it trains the network as an encoder.
    """

    def __init__(self, first=128, blocks=samplecnn.CLMR_BLOCK_CHANNELS, final=512, classes=50):
        super().__init__()
        stages = [nn.Sequential(nn.Conv1d(1, first, 3, stride=3), nn.BatchNorm1d(first), nn.ReLU())]
        width = first
        for channels in blocks:
            stages.append(
                nn.Sequential(
                    nn.Conv1d(width, channels, 3, padding=1),
                    nn.BatchNorm1d(channels),
                    nn.ReLU(),
                    nn.MaxPool1d(3, stride=3),
                )
            )
            width = channels
        stages.append(nn.Sequential(nn.Conv1d(width, final, 3, padding=1), nn.BatchNorm1d(final), nn.ReLU()))
        self.sequential = nn.Sequential(*stages)
        self.fc = nn.Linear(final, classes)

    def encode(self, audio):
        """[B, samples] -> [B, final]: the representation before `fc`."""
        out = self.sequential(audio[:, None, :])
        return out.reshape(audio.shape[0], -1)


def _clips(indices, samples):
    """Synthetic music at 22,050 Hz, through int16 as the datasets store it, each cropped to
    `samples` at a clip-dependent offset."""
    out = []
    for i in indices:
        audio = synth.generate_clip(7, i, sample_rate=RATE, duration_s=3.0).audio  # float32 in [-1, 1]
        pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
        start = (i * 997) % (len(pcm) - samples + 1)
        out.append(pcm[start : start + samples].astype(np.float32) / 32768.0)
    return np.stack(out)


def _trained_like(first, blocks, final, samples, seed=0):
    """A torch SampleCNN with random weights, random BN affines and BN statistics of music."""
    torch.manual_seed(seed)
    model = TorchSampleCNN(first, blocks, final)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)  # not 1 and 0, so scale/bias mix-ups show
                module.bias.uniform_(-0.2, 0.2)
                module.momentum = None  # cumulative average over the batches below
        model.train()
        for batch in range(4):
            model.encode(torch.from_numpy(_clips(range(batch * 6, batch * 6 + 6), samples)))
    model.eval()
    return model


def _model_config(first, blocks, final):
    c = samplecnn.default_config()
    c.first_channels, c.block_channels, c.final_channels = first, tuple(blocks), final
    return ml_collections.ConfigDict({"samplecnn": c})


def _lightning(sd):
    """A PyTorch Lightning checkpoint of CLMR's ContrastiveLearning module."""
    state = {f"model.encoder.{k}": v for k, v in sd.items() if not k.startswith("fc.")}
    state |= {f"encoder.{k}": v for k, v in sd.items() if not k.startswith("fc.")}  # same module, twice
    state["model.projector.0.weight"] = torch.randn(512, 512)
    state["model.projector.2.weight"] = torch.randn(64, 512)
    return {"state_dict": state, "epoch": 9999, "global_step": 123, "pytorch-lightning_version": "1.2.0"}


LAYOUTS = {
    "lightning": _lightning,
    "plain": lambda sd: {f"encoder.{k}": v for k, v in sd.items()},  # with the fc head
    "bare": dict,  # the SampleCNN's own state dict, fc included
}


@pytest.fixture(scope="module")
def paper():
    """CLMR's SampleCNN at paper scale, its embeddings of unseen clips, and a jitted Flax twin."""
    model = _trained_like(128, samplecnn.CLMR_BLOCK_CHANNELS, 512, PAPER_SAMPLES)
    audio = _clips(range(100, 106), PAPER_SAMPLES)  # not among the BN-statistics clips
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(audio)).numpy()
    cfg = _model_config(128, samplecnn.CLMR_BLOCK_CHANNELS, 512)
    module = samplecnn.from_config(cfg, jnp.float32)
    embed = jax.jit(lambda variables, x: module.apply(variables, x, train=False)["pooled"])
    return model, audio, expected, cfg, embed


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_paper_scale_checkpoint_embeds_like_pytorch(paper, layout, tmp_path):
    model, audio, expected, cfg, embed = paper
    path = tmp_path / "clmr.pt"
    torch.save(LAYOUTS[layout](model.state_dict()), path)

    state = clmr.read_state_dict(path)
    assert all(k.startswith("sequential.") for k in state)
    assert not any(k.endswith("num_batches_tracked") for k in state)
    variables = clmr.samplecnn_variables(state, cfg)
    n_params = sum(x.size for x in jax.tree.leaves(variables["params"]))
    assert n_params == 2_368_512

    start = time.perf_counter()
    got = np.asarray(embed(variables, jnp.asarray(audio)))
    scale = float(np.abs(expected).max())
    rel = np.abs(got - expected).max() / scale
    print(f"{layout}: max |diff| / max |embedding| = {rel:.2e} ({time.perf_counter() - start:.1f}s)")
    # float32 roundoff through 11 conv+BN layers leaves torch itself about 5e-6 of the
    # embedding scale from a float64 run of the same network, and ReLU outputs near zero
    # carry no meaningful relative error: atol is 1e-5 of the scale (about twice that floor).
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)

    # The embeddings must differ between clips, or agreement would prove little.
    centred = expected - expected.mean(axis=0)
    assert centred.std(axis=0).mean() > 0.2 * np.abs(expected).mean()
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    cosine = unit @ unit.T
    assert cosine[~np.eye(len(audio), dtype=bool)].max() < 0.99


def test_config_for_reads_the_papers_configuration(paper):
    state = {k: v.numpy() for k, v in paper[0].state_dict().items()}
    found = clmr.config_for(state)
    assert (found.first_channels, tuple(found.block_channels), found.final_channels) == (
        128,
        samplecnn.CLMR_BLOCK_CHANNELS,
        512,
    )


SMALL = (8, (8, 16), 16)  # 2 blocks: 27-sample receptive field


@pytest.fixture
def small_state():
    torch.manual_seed(1)
    return {k: v.numpy() for k, v in TorchSampleCNN(*SMALL).state_dict().items() if "fc." not in k}


def test_small_model_embeds_like_pytorch(tmp_path):
    model = _trained_like(*SMALL, samples=27 * 81)
    torch.save(model.state_dict(), tmp_path / "small.pt")
    cfg = _model_config(*SMALL)
    variables = clmr.samplecnn_variables(clmr.read_state_dict(tmp_path / "small.pt"), cfg)
    audio = _clips(range(200, 204), 27 * 81)
    out = samplecnn.from_config(cfg, jnp.float32).apply(variables, jnp.asarray(audio), train=False)
    with torch.no_grad():  # frames: 81 of them, each one receptive field
        frames = model.sequential(torch.from_numpy(audio)[:, None, :]).numpy().transpose(0, 2, 1)
    scale = float(np.abs(frames).max())
    np.testing.assert_allclose(out["frames"], frames, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(out["pooled"], frames.mean(axis=1), rtol=1e-4, atol=1e-5 * scale)


def test_checkpoint_without_encoder_keys_names_the_keys_it_saw(tmp_path):
    path = tmp_path / "head.pt"
    torch.save(
        {"state_dict": {"model.projector.0.weight": torch.zeros(4, 4), "model.0.bias": torch.zeros(4)}}, path
    )
    with pytest.raises(clmr.ConvertError, match=r"model\.projector\.0\.weight.*model\.0\.bias"):
        clmr.read_state_dict(path)


def test_shape_mismatch_names_the_key_and_both_shapes(small_state):
    small_state["sequential.2.1.running_var"] = np.ones(15, np.float32)
    with pytest.raises(clmr.ConvertError, match=r"sequential\.2\.1\.running_var.*\(15,\).*\(16,\)"):
        clmr.samplecnn_variables(small_state, _model_config(*SMALL))


def test_kernel_size_mismatch_is_an_error(small_state):
    small_state["sequential.1.0.weight"] = np.zeros((8, 8, 5), np.float32)
    with pytest.raises(clmr.ConvertError, match=r"sequential\.1\.0\.weight.*\(8, 8, 5\).*\(3, 8, 8\)"):
        clmr.samplecnn_variables(small_state, _model_config(*SMALL))


def test_config_that_disagrees_with_the_weights_is_an_error(small_state):
    with pytest.raises(clmr.ConvertError, match=r"\(8, \(8, 16\), 16\).*\(8, \(8, 8\), 16\)"):
        clmr.samplecnn_variables(small_state, _model_config(8, (8, 8), 16))


def test_missing_and_unused_tensors_are_errors(small_state):
    cfg = _model_config(*SMALL)
    missing = {k: v for k, v in small_state.items() if k != "sequential.3.1.running_mean"}
    with pytest.raises(clmr.ConvertError, match=r"batch_stats/BatchNorm_3/mean"):
        clmr.samplecnn_variables(missing, cfg)
    extra = small_state | {"sequential.1.4.weight": np.zeros(8, np.float32)}
    with pytest.raises(clmr.ConvertError, match=r"no place.*sequential\.1\.4\.weight"):
        clmr.samplecnn_variables(extra, cfg)


def _leave_mark(path):
    with open(path, "w") as f:
        f.write("code from a checkpoint ran")


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return _leave_mark, (self.path,)


def test_pickled_code_is_refused_not_run(tmp_path):
    mark = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"encoder.sequential.0.0.weight": _Payload(str(mark))}}, path)
    with pytest.raises(clmr.ConvertError, match="weights_only"):
        clmr.read_state_dict(path)
    assert not mark.exists()
    torch.load(path, weights_only=False)  # the payload is live: unrestricted loading runs it
    assert mark.exists()


def test_unreadable_files_are_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(clmr.ConvertError, match="junk.pt"):
        clmr.read_state_dict(tmp_path / "junk.pt")
    with pytest.raises(clmr.ConvertError, match="no such file"):
        clmr.read_state_dict(tmp_path / "absent.pt")


def test_missing_torch_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(clmr.ConvertError, match=r"pip install 'jaxmusic\[convert\]'"):
        clmr.read_state_dict(tmp_path / "x.pt")


def test_convert_then_embed_from_the_command_line(tiny_data, tmp_path):
    """`jaxmusic convert clmr` then `jaxmusic embed`: the written embeddings are the
    PyTorch model's, window by window."""
    model = _trained_like(*SMALL, samples=27 * 81)
    torch.save(_lightning(model.state_dict()), tmp_path / "clmr.ckpt")
    small = [
        "--config.model.samplecnn.first_channels=8",
        "--config.model.samplecnn.block_channels=(8,16)",
        "--config.model.samplecnn.final_channels=16",
        "--config.data.crop_samples=2187",
        "--config.progress_bar=False",
    ]
    config = ["--config", "configs/clmr_samplecnn.py"]
    for args in (
        ["convert", "clmr", "--in", str(tmp_path / "clmr.ckpt"), "--out", str(tmp_path / "w"), *config, *small],
        ["embed", *config, *small, "--workdir", str(tmp_path / "w"), f"--config.data.dir={tiny_data}",
         "--out", str(tmp_path / "emb")],
    ):  # fmt: skip
        proc = start_cli(*args, devices=1)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    got = read_split(tmp_path / "emb", "test")
    first = records.decode_audio(open_split(tiny_data, "test")[0])
    windows = first[: 3 * 2187].reshape(3, 2187).astype(np.float32) / 32768.0
    with torch.no_grad():  # 81 frames a window: jaxmusic averages them
        expected = model.sequential(torch.from_numpy(windows)[:, None, :]).numpy().mean(axis=2)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got["window_embeddings"][:3], expected, rtol=1e-4, atol=1e-5 * scale)
    # Converted weights are for embedding: `train` on them says so in one line.
    proc = start_cli(
        "train",
        *config,
        *small,
        "--workdir",
        str(tmp_path / "w"),
        f"--config.data.dir={tiny_data}",
        devices=1,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "holds converted encoder weights" in err
    assert err.strip().count("\n") == 0, err
