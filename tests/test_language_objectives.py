"""The losses of the transformer and audio-text objectives against NumPy references, and
the masking they rely on: InfoNCE (both directions, learned temperature), audio-text
matching, masked language modelling (only masked positions count), masked patches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic.data.tokenizer import MASK, PAD
from jaxmusic.objectives.language import info_nce
from jaxmusic.objectives.masked import normalized_patches, random_split, reconstruction_loss, take
from jaxmusic.objectives.mulap import NUM_SPECIAL, atm_loss, draw_negatives, mask_tokens, mlm_loss


def np_log_softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def np_unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_info_nce_matches_numpy_in_both_directions():
    rng = np.random.default_rng(0)
    a, t = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    scale = 1 / 0.07
    logits = scale * np_unit(a) @ np_unit(t).T
    a2t = -np.mean(np.diag(np_log_softmax(logits, axis=1)))
    t2a = -np.mean(np.diag(np_log_softmax(logits, axis=0)))
    loss, got_logits = info_nce(jnp.asarray(a), jnp.asarray(t), jnp.asarray(scale))
    np.testing.assert_allclose(got_logits, logits, rtol=1e-5)
    np.testing.assert_allclose(float(loss), (a2t + t2a) / 2, rtol=1e-5)
    # The two directions differ: a loss of only one would not match.
    assert abs(a2t - t2a) > 1e-3


def test_info_nce_temperature_is_learned():
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=(8, 4)))
    t = a + 0.1 * jnp.asarray(rng.normal(size=(8, 4)))  # matched pairs: a sharper scale helps

    def loss(log_scale):
        return info_nce(a, t, jnp.exp(log_scale))[0]

    g = jax.grad(loss)(jnp.log(1 / 0.07))
    assert g < 0  # raising the scale (lowering the temperature) lowers the loss
    # Finite differences agree with the gradient.
    eps = 1e-3
    fd = (loss(jnp.log(1 / 0.07) + eps) - loss(jnp.log(1 / 0.07) - eps)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-2)


def test_audio_text_matching_loss_matches_numpy():
    logits = np.array([2.0, -1.0, 0.5, 3.0, -2.0, 0.0])
    matched = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(matched * np.log(p) + (1 - matched) * np.log(1 - p))
    np.testing.assert_allclose(
        float(atm_loss(jnp.asarray(logits), jnp.asarray(matched))), expected, rtol=1e-6
    )


def test_mlm_loss_counts_only_the_masked_positions():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 7, 11)).astype(np.float32)
    targets = rng.integers(0, 11, size=(3, 7))
    chosen = rng.random((3, 7)) < 0.3
    chosen[0, 0] = True
    ce = -np.take_along_axis(np_log_softmax(logits, -1), targets[..., None], -1)[..., 0]
    expected = ce[chosen].mean()
    got = mlm_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(chosen))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # Anything at a position not chosen changes nothing.
    other = logits.copy()
    other[~chosen] = rng.normal(size=other[~chosen].shape) * 10
    np.testing.assert_allclose(
        float(mlm_loss(jnp.asarray(other), jnp.asarray(targets), jnp.asarray(chosen))), expected, rtol=1e-5
    )
    assert float(mlm_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.zeros((3, 7), bool))) == 0.0


def test_token_masking_leaves_unchosen_tokens_and_specials_unchanged():
    rng = np.random.default_rng(3)
    vocab, b, length = 300, 64, 40
    ids = rng.integers(NUM_SPECIAL, vocab, size=(b, length))
    lengths = rng.integers(5, length + 1, size=b)
    valid = np.arange(length)[None] < lengths[:, None]
    ids[:, 0] = 2  # [CLS]
    ids[np.arange(b), lengths - 1] = 3  # [SEP]
    ids[~valid] = PAD
    out, chosen = mask_tokens(jnp.asarray(ids), jnp.asarray(valid), jax.random.PRNGKey(0), 0.15, vocab)
    out, chosen = np.asarray(out), np.asarray(chosen)
    np.testing.assert_array_equal(out[~chosen], ids[~chosen])  # unchosen tokens untouched
    assert not chosen[ids < NUM_SPECIAL].any() and not chosen[~valid].any()  # never specials or padding
    words = valid & (ids >= NUM_SPECIAL)
    assert 0.12 < chosen.sum() / words.sum() < 0.18
    masked = out[chosen] == MASK
    assert 0.74 < masked.mean() < 0.86  # BERT's 80% [MASK] ...
    kept = out[chosen] == ids[chosen]
    assert 0.05 < kept.mean() < 0.16  # ... 10% unchanged (plus random draws equal by chance)
    assert (out[chosen] >= NUM_SPECIAL).sum() + masked.sum() == chosen.sum()  # random ids are words


def test_negatives_are_never_the_positive_and_hard_ones_follow_similarity():
    b = 6
    sim = np.full((b, b), -5.0)
    for i in range(b):
        sim[i, (i + 1) % b] = 5.0  # one very similar other item per row
        sim[i, i] = 10.0  # the positive is the most similar of all
    for hard, expect_peak in ((True, True), (False, False)):
        draws = np.stack(
            [np.asarray(draw_negatives(jnp.asarray(sim), jax.random.PRNGKey(k), hard)) for k in range(200)]
        )
        assert not (draws == np.arange(b)).any()
        peak = np.mean(draws == (np.arange(b) + 1) % b)
        assert (peak > 0.95) if expect_peak else (peak < 0.4)


def test_patch_masking_partitions_and_leaves_visible_patches_unchanged():
    rng = np.random.default_rng(4)
    patches = jnp.asarray(rng.normal(size=(3, 20, 6)).astype(np.float32))
    visible, hidden = random_split(jax.random.PRNGKey(1), 3, 20, 5)
    for v, h in zip(np.asarray(visible), np.asarray(hidden), strict=True):
        assert sorted([*v, *h]) == list(range(20))
    got = np.asarray(take(patches, visible))
    for i in range(3):
        np.testing.assert_array_equal(got[i], np.asarray(patches)[i, np.asarray(visible)[i]])
    # Different examples get different masks.
    assert len({tuple(v) for v in np.asarray(visible)}) == 3


def test_reconstruction_loss_counts_only_hidden_patches_with_normalised_targets():
    rng = np.random.default_rng(5)
    patches = rng.normal(size=(2, 8, 5)).astype(np.float32) * 3 + 1
    target = np.asarray(normalized_patches(jnp.asarray(patches)))
    np.testing.assert_allclose(target.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(target.std(-1), 1, atol=1e-3)
    pred = rng.normal(size=patches.shape).astype(np.float32)
    hidden = rng.random((2, 8)) < 0.6
    expected = ((pred - target) ** 2).mean(-1)[hidden].mean()
    got = reconstruction_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(hidden))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    pred[~hidden] += 100  # visible patches' predictions do not count
    got = reconstruction_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(hidden))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("probability", [0.15, 0.5])
def test_masking_is_keyed_by_the_rng(probability):
    ids = jnp.full((4, 16), 100)
    valid = jnp.ones((4, 16), bool)
    a = mask_tokens(ids, valid, jax.random.PRNGKey(0), probability, 200)[1]
    b = mask_tokens(ids, valid, jax.random.PRNGKey(0), probability, 200)[1]
    c = mask_tokens(ids, valid, jax.random.PRNGKey(1), probability, 200)[1]
    assert (np.asarray(a) == np.asarray(b)).all() and (np.asarray(a) != np.asarray(c)).any()
