import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmusic.objectives.contrastive import nt_xent


def reference_nt_xent(a, b, t):
    """SimCLR's loss written out with loops, in float64."""
    z = np.concatenate([a, b]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z)
    total = 0.0
    for i in range(n):
        j = (i + n // 2) % n
        sims = np.array([z[i] @ z[k] / t for k in range(n) if k != i])
        total += -(z[i] @ z[j] / t) + np.log(np.sum(np.exp(sims)))
    return total / n


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_nt_xent_matches_numpy_reference(temperature, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, 12, 7)).astype(np.float32)
    np.testing.assert_allclose(
        float(nt_xent(a, b, temperature)), reference_nt_xent(a, b, temperature), rtol=1e-5
    )


def test_negatives_come_from_the_global_batch():
    """Sharded over 4 devices, the loss is the single-device loss over the whole batch."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 16, 8)).astype(np.float32)
    mesh = Mesh(np.asarray(jax.devices()[:4]), ("data",))
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    sharded = jax.jit(nt_xent, static_argnums=2)(
        jax.device_put(a, sharding), jax.device_put(b, sharding), 0.5
    )
    np.testing.assert_allclose(float(sharded), reference_nt_xent(a, b, 0.5), rtol=1e-5)
    # Not the mean of per-device losses (which would use only local negatives).
    local = np.mean([reference_nt_xent(a[i : i + 4], b[i : i + 4], 0.5) for i in range(0, 16, 4)])
    assert abs(float(sharded) - local) > 1e-3
