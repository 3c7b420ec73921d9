"""The transformer and audio-text configs: each loads and suits its encoder, and the
paper-scale ones have the papers' sizes (counted from shapes, nothing is materialised).

    python -m pytest -q -s tests/test_transformer_configs.py -k parameter

prints the table of parameter counts the README quotes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic import config as config_lib
from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs, element_spec
from jaxmusic.models import text_transformer
from jaxmusic.models.registry import build_encoder, check_input
from jaxmusic.objectives.masked import build as build_mae
from jaxmusic.objectives.mulap import MuLaPModel

CONFIGS = [
    "configs/ast_supervised.py",
    "configs/mae_transformer.py",
    "configs/limited_data_transformer.py:ast",
    "configs/limited_data_transformer.py:mae",
    "configs/mulap.py",
    "configs/mulap.py:simclr",
    "configs/muscall.py",
    "configs/muscall.py:simclr",
]


def count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def encoder_params(c) -> int:
    encoder = build_encoder(c.model)
    audio = jax.ShapeDtypeStruct((1, c.data.crop_samples), jnp.float32)
    return count(
        jax.eval_shape(lambda a: encoder.init(jax.random.PRNGKey(0), a, train=False), audio)["params"]
    )


@pytest.mark.parametrize("spec", CONFIGS + [s + (",runlocal" if ":" in s else ":runlocal") for s in CONFIGS])
def test_config_loads_and_suits_its_encoder(spec):
    c = config_lib.load(spec)
    config_lib.validate(c)
    check_input(c.model, c.data.crop_samples, c.model.logmel.sample_rate)
    assert c.model.logmel.sample_rate == c.synth.sample_rate
    if spec.endswith("runlocal"):
        assert c.synth.sample_rate == 8000 and c.data.dir == ""


@pytest.mark.parametrize(
    "spec, message",
    [
        ("configs/limited_data_transformer.py:vit", "must be MODEL\\[,runlocal\\]"),
        ("configs/mulap.py:big", "unknown config argument"),
        ("configs/muscall.py:runlocal,x", "unknown config argument"),
    ],
)
def test_bad_config_arguments_are_refused(spec, message):
    with pytest.raises((ValueError, ConfigError), match=message):
        config_lib.load(spec)


def test_mae_refuses_an_encoder_without_patches():
    c = config_lib.load("configs/mae_transformer.py:runlocal")
    c.model.name = "fcn"
    with pytest.raises(ConfigError, match="model.name=spectrogram_transformer"):
        build_mae(c, {})


def test_parameter_counts_match_the_papers():
    rows = []
    ast = encoder_params(config_lib.load("configs/limited_data_transformer.py:ast"))
    rows.append(("limited_data_transformer.py:ast (encoder)", ast, "87M"))
    assert abs(ast - 87e6) / 87e6 < 0.03, ast

    c = config_lib.load("configs/limited_data_transformer.py:mae")
    mae_encoder = encoder_params(c)
    objective = build_mae(c, {})
    spec = element_spec(Inputs(num_views=1), c.data.crop_samples, {})
    mae_total = count(jax.eval_shape(objective.init, jax.random.PRNGKey(0), spec)["params"])
    rows.append(("limited_data_transformer.py:mae (encoder + decoder)", mae_total, "7.2M"))
    rows.append(("limited_data_transformer.py:mae (encoder only)", mae_encoder, ""))
    assert abs(mae_total - 7.2e6) / 7.2e6 < 0.03, mae_total

    ast_b = encoder_params(config_lib.load("configs/ast_supervised.py"))
    rows.append(("ast_supervised.py (encoder)", ast_b, "87M (AST-B)"))
    assert abs(ast_b - 87e6) / 87e6 < 0.05, ast_b
    vit = encoder_params(config_lib.load("configs/mae_transformer.py"))
    rows.append(("mae_transformer.py (encoder)", vit, "86M (ViT-B)"))

    c = config_lib.load("configs/muscall.py")
    m = c.objective.muscall
    text = text_transformer.from_config(m.text, m.tokenizer.vocab_size)
    ids = jax.ShapeDtypeStruct((1, m.tokenizer.max_tokens), jnp.int32)
    text_n = count(jax.eval_shape(lambda x: text.init(jax.random.PRNGKey(0), x), ids))
    rows.append(("muscall.py (audio ResNet)", encoder_params(c), ""))
    rows.append(("muscall.py (4-layer text transformer)", text_n, ""))

    c = config_lib.load("configs/mulap.py")
    m = c.objective.mulap
    model = MuLaPModel(
        encoder=build_encoder(c.model), vocab_size=m.tokenizer.vocab_size, width=m.width, depth=m.depth,
        heads=m.heads, mlp_dim=m.mlp_dim, dropout=m.dropout, max_audio_frames=m.max_audio_frames,
        max_tokens=m.tokenizer.max_tokens,
    )  # fmt: skip
    batch = {
        "audio": jax.ShapeDtypeStruct((2, 1, c.data.crop_samples), jnp.float32),
        "text": {
            "ids": jax.ShapeDtypeStruct((2, m.tokenizer.max_tokens), jnp.int32),
            "mask": jax.ShapeDtypeStruct((2, m.tokenizer.max_tokens), jnp.bool_),
        },
    }
    variables = jax.eval_shape(lambda b: model.init(jax.random.PRNGKey(0), b, train=False), batch)
    total = count(variables["params"])
    backbone = count(variables["params"]["encoder"])
    rows.append(("mulap.py (audio ResNet)", backbone, ""))
    rows.append(("mulap.py (token embeddings + joint transformer + heads)", total - backbone, ""))
    print("\n| config | parameters (ours) | paper |\n|---|---:|---|")
    for name, n, paper in rows:
        print(f"| {name} | {n:,} | {paper} |")
