import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import TINY_RATE, tiny_config

from jaxmusic import hear
from jaxmusic.evaluate.embed import load_encoder_variables
from jaxmusic.models.registry import build_encoder
from jaxmusic.train.checkpoint import write_encoder_checkpoint
from jaxmusic.train.trainer import train_and_evaluate

WINDOW = 729  # tiny_config's crop
EMBED = 16  # tiny_config's final_channels
# Shorter than a window, about one window, several windows plus a remainder.
LENGTHS = (500, 730, 4000)


@pytest.fixture(scope="module")
def workdir(tiny_data, tmp_path_factory):
    c = tiny_config(tiny_data)
    c.total_steps = 1
    # Only the workdir's layout matters here: skipping augmentation keeps its compile short.
    for p in ("polarity_p", "noise_p", "gain_p", "filter_p"):
        c.augment[p] = 0.0
    out = tmp_path_factory.mktemp("hear") / "w"
    train_and_evaluate(c, out)
    return out


@pytest.fixture(scope="module")
def model(workdir):
    return hear.load_model(str(workdir), hop_ms=50.0)


def _audio(n_sounds, n_samples, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n_sounds, n_samples)).astype(np.float32)


def _direct_pooled(workdir, tiny_data, windows):
    c = tiny_config(tiny_data)
    variables, _ = load_encoder_variables(c, workdir)
    return np.asarray(build_encoder(c.model).apply(variables, windows, train=False)["pooled"])


def test_model_is_a_torch_module_with_hears_attributes(model):
    assert isinstance(model, torch.nn.Module)
    assert list(model.parameters()) == []
    assert model.to("cpu") is model
    assert (model.sample_rate, model.scene_embedding_size, model.timestamp_embedding_size) == (
        TINY_RATE,
        EMBED,
        EMBED,
    )
    assert all(type(v) is int for v in (model.sample_rate, model.scene_embedding_size))


@pytest.mark.parametrize("n_samples", LENGTHS)
def test_scene_embeddings_torch_and_numpy_agree(model, n_samples):
    audio = _audio(3, n_samples)
    out = hear.get_scene_embeddings(torch.from_numpy(audio), model)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.shape == (3, EMBED)
    plain = hear.get_scene_embeddings(audio, model)
    assert isinstance(plain, np.ndarray) and plain.dtype == np.float32
    np.testing.assert_allclose(plain, out.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("n_samples", LENGTHS)
def test_timestamp_embeddings_every_hop_from_zero(model, n_samples):
    audio = _audio(2, n_samples, seed=1)
    emb, ts = hear.get_timestamp_embeddings(torch.from_numpy(audio), model)
    assert emb.dtype == torch.float32 and ts.dtype == torch.float32
    # 50 ms at 8 kHz is 400 samples: one timestamp at 0 ms and one per whole hop after.
    count = n_samples // 400 + 1
    assert emb.shape == (2, count, EMBED) and ts.shape == (2, count)
    np.testing.assert_allclose(ts.numpy(), np.broadcast_to(np.arange(count) * 50.0, (2, count)))
    plain_emb, plain_ts = hear.get_timestamp_embeddings(audio, model)
    assert plain_emb.dtype == np.float32 and plain_ts.dtype == np.float32
    np.testing.assert_allclose(plain_emb, emb.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(plain_ts, ts.numpy())


def test_scene_embedding_is_the_mean_of_its_windows(model, workdir, tiny_data):
    audio = _audio(2, 4000, seed=2)
    # 4,000 samples hold five whole 729-sample windows; the remainder is dropped.
    expected = _direct_pooled(workdir, tiny_data, audio[1, : 5 * WINDOW].reshape(5, WINDOW)).mean(0)
    np.testing.assert_allclose(hear.get_scene_embeddings(audio, model)[1], expected, rtol=1e-5, atol=1e-6)
    short = _audio(1, 500, seed=3)
    padded = np.zeros((1, WINDOW), np.float32)
    padded[0, :500] = short[0]
    np.testing.assert_allclose(
        hear.get_scene_embeddings(short, model),
        _direct_pooled(workdir, tiny_data, padded),
        rtol=1e-5,
        atol=1e-6,
    )


def test_timestamp_embeddings_are_of_windows_centred_on_them(model, workdir, tiny_data):
    audio = _audio(1, 4000, seed=4)
    emb, _ = hear.get_timestamp_embeddings(audio, model)
    half = WINDOW // 2
    first = np.concatenate([np.zeros(half, np.float32), audio[0, : WINDOW - half]])  # centred on 0 ms
    second = audio[0, 400 - half : 400 - half + WINDOW]  # centred on 50 ms
    np.testing.assert_allclose(
        emb[0, :2], _direct_pooled(workdir, tiny_data, np.stack([first, second])), rtol=1e-5, atol=1e-6
    )


def test_hop_of_a_fraction_of_a_sample_does_not_drift(workdir):
    # 33.3 ms is 266.4 samples at 8 kHz: a rounded hop would drift 0.4 samples a step.
    m = hear.load_model(str(workdir), hop_ms=33.3, batch_size=5)
    emb, ts = hear.get_timestamp_embeddings(_audio(1, 8000), m)
    assert ts.shape == (1, 31) and emb.shape == (1, 31, EMBED)
    np.testing.assert_allclose(np.diff(ts[0]), 33.3, rtol=1e-4)
    assert ts[0, -1] <= 1000.0


def test_default_hop_is_250_ms(workdir):
    m = hear.load_model(str(workdir))
    _, ts = hear.get_timestamp_embeddings(_audio(1, 8000), m)
    np.testing.assert_array_equal(ts[0], [0.0, 250.0, 500.0, 750.0, 1000.0])


def test_a_converted_checkpoint_folder_loads_at_its_configs_rate(workdir, tiny_data, tmp_path):
    c = tiny_config(tiny_data)
    variables, _ = load_encoder_variables(c, workdir)
    c.data.dir = ""
    c.synth.sample_rate = 16000
    out = write_encoder_checkpoint(tmp_path / "converted", c, variables, origin="test")
    m = hear.load_model(str(out))
    assert m.sample_rate == 16000
    audio = _audio(2, 1000)
    np.testing.assert_allclose(
        hear.get_scene_embeddings(audio, m),
        hear.get_scene_embeddings(audio, hear.load_model(str(workdir))),
        rtol=1e-6,
        atol=1e-7,
    )


def test_paths_without_an_encoder_are_refused(workdir, tmp_path):
    with pytest.raises(ValueError, match="model_file_path"):
        hear.load_model()
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        hear.load_model(str(tmp_path))
    moved = tmp_path / "moved"
    shutil.copytree(workdir, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["dir"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="gone/manifest.json"):
        hear.load_model(str(moved))


def test_without_torch_a_plain_model_and_numpy_arrays(workdir, model):
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["torch"] = None  # any `import torch` now fails
        import numpy as np
        from jaxmusic import hear

        m = hear.load_model({str(workdir)!r}, hop_ms=50.0)
        audio = np.load(sys.argv[1])
        scene = hear.get_scene_embeddings(audio, m)
        emb, ts = hear.get_timestamp_embeddings(audio, m)
        np.savez(sys.argv[2], scene=scene, emb=emb, ts=ts)
        print(json.dumps({{"type": type(m).__name__, "dtypes": [str(a.dtype) for a in (scene, emb, ts)]}}))
        """
    )
    audio = _audio(2, 1500, seed=5)
    np.save(workdir.parent / "audio.npy", audio)
    result = subprocess.run(
        [sys.executable, "-c", script, str(workdir.parent / "audio.npy"), str(workdir.parent / "out.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed == {"type": "HearModel", "dtypes": ["float32", "float32", "float32"]}
    with np.load(workdir.parent / "out.npz") as out:
        np.testing.assert_allclose(
            out["scene"], hear.get_scene_embeddings(audio, model), rtol=1e-5, atol=1e-6
        )
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        np.testing.assert_allclose(out["emb"], emb, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out["ts"], ts)
