import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxmusic.models import fcn, frontend, musicnn, shortchunk

DEFS = {
    "fcn": fcn,
    "musicnn": musicnn,
    "shortchunk_cnn": shortchunk.CNN,
    "shortchunk_resnet": shortchunk.RESNET,
}
TAGS = 50


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def model_config(name: str, **logmel) -> ml_collections.ConfigDict:
    """`model` with the shared log-mel section and `name`'s own section at its defaults."""
    m = ml_collections.ConfigDict({"name": name, "logmel": frontend.default_config()})
    m.logmel.update(logmel)
    m[name] = DEFS[name].default_config()
    return m


def param_count(m: ml_collections.ConfigDict, samples: int) -> tuple[int, int]:
    """(encoder parameters, pooled width), without running anything (eval_shape)."""
    enc = DEFS[m.name].from_config(m, jnp.float32)
    variables = jax.eval_shape(lambda: enc.init(jax.random.PRNGKey(0), jnp.zeros((1, samples)), train=False))
    out = jax.eval_shape(lambda v: enc.apply(v, jnp.zeros((2, samples)), train=False), variables)
    assert out["pooled"].shape[0] == 2 and out["frames"].shape[0] == 2
    return count(variables["params"]), out["pooled"].shape[1]


# name -> (logmel overrides, input samples, encoder parameters, published total, published source)
PAPER = {
    "fcn": ({}, 60000, 3_661_698, 3.7e6),  # limited-data "VGGish", 3.75 s
    "shortchunk_cnn": ({}, 59049, 3_661_698, 3.7e6),  # same network (Won et al.'s code)
    "shortchunk_resnet": ({}, 59049, 12_078_594, 12.1e6),  # Won et al.'s model.py, by arithmetic
    "musicnn": ({"n_mels": 96}, 48000, 12_030_209, 12.0e6),  # limited-data "MusiCNN", 3 s
}


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_scale_parameter_counts(name):
    logmel, samples, encoder_params, published = PAPER[name]
    n, width = param_count(model_config(name, **logmel), samples)
    assert n == encoder_params
    with_classifier = n + width * TAGS + TAGS
    assert abs(with_classifier - published) / published < 0.01


def test_original_musicnn_and_fcn5_counts_match_their_code():
    m = model_config("musicnn", n_mels=96)
    m.musicnn.midend_filters, m.musicnn.dense_units = 64, 200  # Pons et al.'s MTT_musicnn
    n, width = param_count(m, 48000)
    assert n + width * TAGS + TAGS == 787_159
    m = model_config("fcn", n_mels=96)
    m.fcn.channels, m.fcn.embedding_dim = (64, 128, 128, 128, 64), 0  # Choi et al.'s FCN-5
    m.fcn.freq_pools, m.fcn.time_pools = (2, 2, 2, 3, 4), (4, 4, 4, 5, 4)
    assert fcn.input_lengths(m) == (1279 * 256, 1)
    n, width = param_count(m, 16000 * 29 + 1600)
    assert (n, width) == (444_482, 64)


def test_default_configs_hold_only_simple_values():
    for d in DEFS.values():
        for key, value in d.default_config().items():
            assert isinstance(value, (int, float, str, tuple)), key
            if isinstance(value, tuple):
                assert all(isinstance(v, (int, float, str)) for v in value), key


LOGMEL_TINY = {"n_fft": 256, "hop_length": 128, "n_mels": 32}


def tiny(name: str, **overrides) -> ml_collections.ConfigDict:
    """The tiny variants used throughout: a few channels, 2-3 stages, 32 mel bins."""
    m = model_config(name, **LOGMEL_TINY)
    m[name].update(
        {
            "fcn": {"channels": (4, 8), "freq_pools": (2, 4), "time_pools": (2, 2), "embedding_dim": 16},
            "shortchunk_cnn": {"n_channels": 4, "multipliers": (1, 2, 2)},
            "shortchunk_resnet": {"n_channels": 4, "multipliers": (1, 2, 2)},
            "musicnn": {
                "filter_factor": 0.125,
                "temporal_widths": (16, 8),
                "midend_filters": 8,
                "dense_units": 16,
            },
        }[name]
    )
    m[name].update(overrides)
    return m


def init(m, audio):
    enc = DEFS[m.name].from_config(m, jnp.float32)
    return enc, enc.init(jax.random.PRNGKey(0), audio, train=False)


TINY_WIDTHS = {
    "fcn": (16, 8),
    "shortchunk_cnn": (8, 8),
    "shortchunk_resnet": (8, 8),
    "musicnn": (16, 40 + 3 * 8),
}
TINY_MINIMUM = {"fcn": 384, "shortchunk_cnn": 896, "shortchunk_resnet": 1, "musicnn": 1}


@pytest.mark.parametrize("name", list(DEFS))
def test_tiny_output_shapes_at_the_minimum_and_longer(name):
    m = tiny(name)
    minimum, multiple = DEFS[name].input_lengths(m)
    assert (minimum, multiple) == (TINY_MINIMUM[name], 1)
    pooled_width, frame_width = TINY_WIDTHS[name]
    for samples in (minimum, 4003):
        audio = jax.random.uniform(jax.random.PRNGKey(1), (2, samples), minval=-1, maxval=1)
        enc, variables = init(m, audio)
        out = enc.apply(variables, audio, train=False)
        assert out["pooled"].shape == (2, pooled_width) and out["pooled"].dtype == jnp.float32
        assert out["frames"].shape[::2] == (2, frame_width) and out["frames"].shape[1] >= 1
        assert out["frames"].dtype == jnp.float32 and np.all(np.isfinite(out["pooled"]))


@pytest.mark.parametrize("name", list(DEFS))
def test_shorter_than_the_minimum_is_refused(name):
    m = tiny(name)
    minimum, _ = DEFS[name].input_lengths(m)
    enc = DEFS[name].from_config(m, jnp.float32)
    with pytest.raises(ValueError, match="samples"):
        enc.init(jax.random.PRNGKey(0), jnp.zeros((1, minimum - 1)), train=False)


@pytest.mark.parametrize("name", list(DEFS))
def test_train_mode_updates_batch_stats_with_dropout_and_specaugment(name):
    m = tiny(name)
    m.logmel.update({"time_masks": 1, "time_mask_frames": 3, "freq_masks": 1, "freq_mask_bins": 4})
    audio = jax.random.uniform(jax.random.PRNGKey(1), (3, 4003), minval=-1, maxval=1)
    enc, variables = init(m, audio)
    rngs = {"dropout": jax.random.PRNGKey(2), "specaugment": jax.random.PRNGKey(3)}
    out, updates = enc.apply(variables, audio, train=True, rngs=rngs, mutable=["batch_stats"])
    assert set(updates) == {"batch_stats"}
    changed = jax.tree.map(
        lambda a, b: bool(np.any(a != b)), updates["batch_stats"], variables["batch_stats"]
    )
    assert all(jax.tree.leaves(changed))
    assert np.all(np.isfinite(out["pooled"])) and np.all(np.isfinite(out["frames"]))


@pytest.mark.parametrize("name", list(DEFS))
def test_bfloat16_compute_gives_float32_outputs_close_to_float32(name):
    m = tiny(name)
    audio = jax.random.uniform(jax.random.PRNGKey(1), (2, 4003), minval=-1, maxval=1)
    enc, variables = init(m, audio)
    ref = enc.apply(variables, audio, train=False)
    low = DEFS[name].from_config(m, jnp.bfloat16).apply(variables, audio, train=False)
    for key in ("pooled", "frames"):
        assert low[key].dtype == jnp.float32
        scale = float(np.abs(ref[key]).max()) + 1e-3
        assert float(np.abs(low[key] - ref[key]).max()) < 0.1 * scale, key


@pytest.mark.parametrize("name", ["shortchunk_cnn", "shortchunk_resnet", "fcn"])
def test_layer_norm_makes_each_example_independent_of_the_batch_in_training(name):
    audio = jax.random.uniform(jax.random.PRNGKey(1), (3, 4003), minval=-1, maxval=1)
    others = audio.at[1:].set(jax.random.uniform(jax.random.PRNGKey(9), (2, 4003), minval=-1, maxval=1))
    rngs = {"dropout": jax.random.PRNGKey(2)}

    def first(m, batch):
        enc, variables = init(m, batch)
        out, _ = enc.apply(variables, batch, train=True, rngs=rngs, mutable=["batch_stats"])
        return np.asarray(out["pooled"][0]), np.asarray(out["frames"][0])

    layer = tiny(name, norm="layer")
    for a, b in zip(first(layer, audio), first(layer, others), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # same batch size: same dropout mask
    layer[name].dropout = 0.0
    for a, b in zip(first(layer, audio), first(layer, audio[:1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # alone or in a batch
    batch = tiny(name)
    assert not np.allclose(first(batch, audio)[0], first(batch, others)[0])
