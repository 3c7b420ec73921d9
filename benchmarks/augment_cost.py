"""Benchmark: what CLMR's on-device augmentation chain costs, as a fraction of a train step.

Same batch, same jitted program shape: the CLMR SampleCNN train step (paper model,
59,049-sample views, two views per clip) with the full chain inside, the same step
with no augmentation, and the chain alone. Ratios come from the same run.

    python benchmarks/augment_cost.py [--batch 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import config as config_lib
from jaxmusic.augment import AugmentSpec, augment_batch
from jaxmusic.data.pipeline import element_spec
from jaxmusic.objectives.registry import build_objective
from jaxmusic.train.optimizer import make_optimizer
from jaxmusic.train.state import state_factory
from jaxmusic.train.trainer import make_train_step

RATE = 22050


def best_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile and warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="clips per step (48 in the paper)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    config = config_lib.load("configs/clmr_samplecnn.py")
    spec = AugmentSpec.from_config(config.augment, RATE)
    manifest = {"sample_rate": RATE, "tasks": {}}  # SimCLR needs no labels
    objective = build_objective(config, manifest)
    tx, _ = make_optimizer(config.optimizer, config.total_steps)
    init = state_factory(objective, tx, element_spec(objective.inputs, config.data.crop_samples, manifest))
    state = init(jax.random.PRNGKey(0))
    views = jnp.asarray(
        np.random.default_rng(0).integers(-8000, 8000, (args.batch, 2, config.data.crop_samples), np.int16)
    )
    batch = {"audio": views}
    key = jax.random.PRNGKey(1)
    with_chain = jax.jit(make_train_step(objective, tx, spec, key))
    without = jax.jit(make_train_step(objective, tx, None, key))
    chain = jax.jit(lambda v: augment_batch(v.astype(jnp.float32) / 32768.0, key, spec))
    t_with = best_time(lambda: with_chain(state, batch), args.repeats)
    t_without = best_time(lambda: without(state, batch), args.repeats)
    t_chain = best_time(lambda: chain(views), args.repeats)
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; CLMR SampleCNN, batch {args.batch} x 2 views"
    )
    print("| measured | ms | fraction of the step without augmentation |")
    print("|---|---|---|")
    print(f"| train step, no augmentation | {1e3 * t_without:.0f} | 1.00 |")
    print(f"| train step, full chain inside | {1e3 * t_with:.0f} | {t_with / t_without:.2f} |")
    print(f"| chain alone | {1e3 * t_chain:.0f} | {t_chain / t_without:.3f} |")


if __name__ == "__main__":
    main()
