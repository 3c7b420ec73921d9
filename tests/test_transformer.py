import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxmusic.config import ConfigError
from jaxmusic.models import frontend, registry
from jaxmusic.models import spectrogram_transformer as st
from jaxmusic.models.text_transformer import TextTransformer
from jaxmusic.models.transformer import SelfAttention, Transformer, apply_rotary, attention, masked_mean

KEY = jax.random.PRNGKey(0)


def tiny(positions: str = "learned", **kw) -> Transformer:
    return Transformer(depth=2, width=16, heads=2, mlp_dim=32, positions=positions, max_len=16, **kw)


def padded_batch(length: int = 7, valid: tuple[int, ...] = (7, 4)):
    x = jax.random.normal(KEY, (len(valid), length, 16))
    mask = jnp.arange(length)[None, :] < jnp.array(valid)[:, None]
    return x, mask


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_padded_tokens_change_no_valid_output(positions):
    model = tiny(positions)
    x, mask = padded_batch()
    variables = model.init(KEY, x, mask)
    other = jnp.where(mask[..., None], x, 100.0 * jax.random.normal(jax.random.PRNGKey(1), x.shape))
    a, b = model.apply(variables, x, mask), model.apply(variables, other, mask)
    np.testing.assert_allclose(np.where(mask[..., None], a, 0), np.where(mask[..., None], b, 0), atol=1e-5)
    assert not np.allclose(a, b)  # the padded positions themselves did change
    np.testing.assert_allclose(masked_mean(a, mask), masked_mean(b, mask), atol=1e-5)


def numpy_attention(x, p, mask, heads):
    """Masked softmax attention, written out in NumPy from SelfAttention's parameters."""
    x = np.asarray(x, np.float64)

    def proj(name):
        return np.einsum("btd,dnh->btnh", x, p[name]["kernel"]) + p[name]["bias"]

    q, k, v = proj("query"), proj("key"), proj("value")
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    logits = np.where(np.asarray(mask)[:, None, None, :], logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    y = np.einsum("bnts,bsnh->btnh", w, v)
    return np.einsum("btnh,nhd->btd", y, p["out"]["kernel"]) + p["out"]["bias"]


def test_attention_matches_numpy_masked_softmax():
    x, mask = padded_batch()
    layer = SelfAttention(heads=2)
    positions = jnp.broadcast_to(jnp.arange(x.shape[1]), mask.shape)
    variables = layer.init(KEY, x, mask, positions)
    got = layer.apply(variables, x, mask, positions)
    p = jax.tree.map(np.asarray, variables["params"])
    np.testing.assert_allclose(got, numpy_attention(x, p, mask, 2), atol=1e-5)


def test_explicit_attention_path_equals_fused():
    q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (2, 5, 2, 8)) for i in range(3))
    mask = jnp.array([[True] * 5, [True, True, False, False, False]])
    fused = attention(q, k, v, mask)
    explicit = attention(q, k, v, mask, dropout_rate=0.0, dropout_rng=KEY)
    np.testing.assert_allclose(fused, explicit, atol=1e-5)


def test_rotary_scores_depend_only_on_offset():
    q, k = (jax.random.normal(jax.random.PRNGKey(i), (1, 1, 1, 8)) for i in (1, 2))

    def score(m, n):
        rq = apply_rotary(q, jnp.array([[m]]))
        rk = apply_rotary(k, jnp.array([[n]]))
        return float(jnp.sum(rq * rk))

    assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-4)
    assert score(0, 5) == pytest.approx(score(100, 105), abs=1e-4)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)
    # Through the whole model: shifting every position leaves the output unchanged.
    model = tiny("rotary")
    x, mask = padded_batch()
    pos = jnp.broadcast_to(jnp.arange(7), mask.shape)
    variables = model.init(KEY, x, mask)
    np.testing.assert_allclose(
        model.apply(variables, x, mask, pos), model.apply(variables, x, mask, pos + 37), atol=1e-4
    )


def test_dropout_only_in_training_and_rng_dependent():
    model = tiny(dropout=0.3, attention_dropout=0.3)
    x, mask = padded_batch()
    variables = model.init(KEY, x, mask)
    eval_a = model.apply(variables, x, mask, train=False)
    eval_b = model.apply(variables, x, mask, train=False, rngs={"dropout": KEY})
    np.testing.assert_array_equal(eval_a, eval_b)

    def train(seed):
        return model.apply(variables, x, mask, train=True, rngs={"dropout": jax.random.PRNGKey(seed)})

    np.testing.assert_array_equal(train(1), train(1))
    assert not np.allclose(train(1), train(2))
    assert not np.allclose(train(1), eval_a)


def test_learned_positions_refuse_too_many_tokens():
    with pytest.raises(ValueError, match="exceed the learned position table"):
        tiny().init(KEY, jnp.zeros((1, 17, 16)))
    with pytest.raises(ValueError, match="not a multiple of heads"):
        Transformer(depth=1, width=10, heads=3, mlp_dim=8).init(KEY, jnp.zeros((1, 2, 10)))


# --- spectrogram transformer -------------------------------------------------------------

LOGMEL_TINY = {"sample_rate": 8000, "n_fft": 128, "hop_length": 64, "n_mels": 24, "f_max": 4000.0}


def st_model(**kw) -> ml_collections.ConfigDict:
    m = registry.model_config()
    m.name = "spectrogram_transformer"
    m.logmel.update(LOGMEL_TINY)
    c = m.spectrogram_transformer
    c.update(patch_freq=8, patch_time=8, stride_freq=8, stride_time=6, width=16, depth=1, heads=2, mlp_dim=32)
    c.max_time_patches = 16
    c.update(kw)
    return m


def audio(batch: int = 2, samples: int = 4000) -> jax.Array:
    return 0.1 * jax.random.normal(KEY, (batch, samples))


def test_patch_grid_shape():
    enc = registry.build_encoder(st_model())
    samples = 4000  # 63 frames: (63 - 8) // 6 + 1 = 10 columns; 24 bins: 3 rows
    assert frontend.num_frames(samples, 128, 64) == 63
    variables = enc.init(KEY, audio(), train=False)
    p, grid = enc.apply(variables, audio(samples=samples), method="patches")
    assert grid == (3, 10)
    assert p.shape == (2, 30, 64) and p.dtype == jnp.float32


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_encode_on_all_ids_is_what_call_uses(positions):
    enc = registry.build_encoder(st_model(positions=positions))
    x = audio()
    variables = enc.init(KEY, x, train=False)
    out = enc.apply(variables, x, train=False)
    p, grid = enc.apply(variables, x, method="patches")
    ids = jnp.broadcast_to(jnp.arange(p.shape[1]), p.shape[:2])
    tokens = enc.apply(variables, p, ids, grid, method="encode")
    assert tokens.shape == (2, 30, 16) and tokens.dtype == jnp.float32
    np.testing.assert_allclose(out["pooled"], tokens.mean(1), atol=1e-6)
    np.testing.assert_allclose(out["frames"], tokens.reshape(2, 3, 10, 16).mean(1), atol=1e-6)
    assert out["frames"].shape == (2, 10, 16) and out["pooled"].shape == (2, 16)
    assert np.isfinite(out["pooled"]).all()
    # Positions come from ids, not order: permuting the patches permutes the tokens.
    perm = np.random.default_rng(0).permutation(30)
    shuffled = enc.apply(variables, p[:, perm], ids[:, perm], grid, method="encode")
    np.testing.assert_allclose(shuffled, tokens[:, perm], atol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_a_patch_embedding_does_not_depend_on_the_others(positions):
    # depth 0: the tokens are the input embeddings (patch + positions), then LayerNorm.
    enc = registry.build_encoder(st_model(positions=positions, depth=0))
    x = audio()
    variables = enc.init(KEY, x, train=False)
    p, grid = enc.apply(variables, x, method="patches")
    ids = jnp.broadcast_to(jnp.arange(30), (2, 30))
    every = enc.apply(variables, p, ids, grid, method="encode")
    visible = jnp.array([[0, 4, 13, 29], [2, 3, 17, 21]])
    some = enc.apply(variables, jnp.take_along_axis(p, visible[..., None], 1), visible, grid, method="encode")
    np.testing.assert_allclose(some, jnp.take_along_axis(every, visible[..., None], 1), atol=1e-6)


def test_registry_check_input_and_dtype():
    m = st_model()
    assert registry.input_lengths(m) == (64 * 7, 1)  # 8 centred frames
    registry.check_input(m, 4000, 8000)
    with pytest.raises(ConfigError, match="does not suit"):
        registry.check_input(m, 300, 8000)
    with pytest.raises(ConfigError, match="exceeds 24 mel bins"):
        registry.check_input(st_model(patch_freq=32), 4000, 8000)
    m.compute_dtype = "bfloat16"
    enc = registry.build_encoder(m)
    variables = enc.init(KEY, audio(), train=False)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))
    out = enc.apply(variables, audio(), train=False)
    assert out["pooled"].dtype == jnp.float32 and np.isfinite(out["pooled"]).all()


def test_learned_time_positions_refuse_longer_windows():
    enc = registry.build_encoder(st_model(max_time_patches=4))
    with pytest.raises(ValueError, match="max_time_patches=4"):
        enc.init(KEY, audio(), train=False)
    rotary = registry.build_encoder(st_model(max_time_patches=4, positions="rotary"))
    variables = rotary.init(KEY, audio(), train=False)
    assert rotary.apply(variables, audio(samples=8000))["frames"].shape == (2, 20, 16)


# --- text transformer ----------------------------------------------------------------------


def test_text_padding_is_ignored_and_logits_are_tied():
    model = TextTransformer(vocab_size=50, width=16, depth=2, heads=2, mlp_dim=32, dropout=0.1, max_len=12)
    ids = jax.random.randint(KEY, (2, 9), 5, 50)
    mask = jnp.arange(9)[None, :] < jnp.array([[9], [5]])
    variables = model.init(KEY, ids, mask)
    other = jnp.where(mask, ids, 7)
    a, b = model.apply(variables, ids, mask), model.apply(variables, other, mask)
    assert a["pooled"].shape == (2, 16) and a["tokens"].shape == (2, 9, 16)
    np.testing.assert_allclose(a["pooled"], b["pooled"], atol=1e-5)
    logits = model.apply(variables, a["tokens"], method="logits")
    assert logits.shape == (2, 9, 50) and logits.dtype == jnp.float32
    table = variables["params"]["token_embed"]["embedding"]
    np.testing.assert_allclose(logits, a["tokens"] @ table.T + variables["params"]["logits_bias"], atol=1e-5)
    emb = model.apply(variables, ids, method="embed")
    np.testing.assert_allclose(emb, table[ids], atol=0)


def test_ast_base_parameter_count_and_simple_defaults():
    m = registry.model_config()
    m.name = "spectrogram_transformer"
    m.logmel.update(hop_length=160, n_fft=400)  # 128 bins, 16 kHz: 5.12 s is a 12 x 50 grid
    m.spectrogram_transformer.update(width=768, depth=12, heads=12, mlp_dim=3072, max_time_patches=50)
    m.spectrogram_transformer.update(stride_freq=10, stride_time=10)
    enc = st.from_config(m, jnp.float32)
    variables = jax.eval_shape(
        lambda: enc.init(KEY, jnp.zeros((1, 81920)), train=False)
    )  # never materialised
    assert sum(x.size for x in jax.tree.leaves(variables)) == 85_300_992
    for key, value in st.default_config().items():
        assert isinstance(value, (int, float, str)), key
