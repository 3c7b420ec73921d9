import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic.models.samplecnn import SampleCNN


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_clmr_samplecnn_has_the_published_parameter_count():
    model = SampleCNN()
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 59049)), train=False))
    assert count(variables["params"]) == 2_368_512
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 59049)), train=False), variables)
    assert out["pooled"].shape == (2, 512) and out["frames"].shape == (2, 1, 512)


def test_tiny_variant_runs_and_averages_leftover_frames():
    model = SampleCNN(first_channels=4, block_channels=(4, 8), final_channels=8)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 27 * 3))
    variables = model.init(jax.random.PRNGKey(1), x, train=False)
    y, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    assert y["pooled"].shape == (3, 8) and np.all(np.isfinite(y["pooled"]))
    assert y["frames"].shape == (3, 3, 8)  # 81 samples = 3 receptive fields
    np.testing.assert_allclose(y["pooled"], y["frames"].mean(axis=1), rtol=1e-6)
    assert "batch_stats" in updates


def test_wrong_input_length_is_refused():
    model = SampleCNN(first_channels=4, block_channels=(4, 8), final_channels=8)
    with pytest.raises(ValueError, match="k\\*27"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
