"""Benchmark: jaxmusic's CLMR train step against the same step in PyTorch, and against a matmul ceiling.

The step: SampleCNN 3^9 on 59,049-sample views (two views per clip), projector
512-512-64, NT-Xent at temperature 0.5, Adam 3e-4, from int16 PCM. jaxmusic's side is
`make_train_step(objective, tx, spec=None, ...)` of configs/clmr_samplecnn.py, jitted
with the state donated as the trainer does; it has no augmentation chain (spec=None),
and neither has the PyTorch side (benchmarks/torch_clmr_step.py), so both steps are
dequantise, forward, loss, backward, update. jaxmusic's step also computes its metrics
(gradient norm, finiteness of the new state), which PyTorch's does not.

Both sides start from the same weights (PyTorch's initialisation, converted with
jaxmusic.convert.clmr) and take the same input; their first losses are printed side
by side. Threads: the process is pinned to `--threads` cores before either library
starts (XLA's CPU client sizes its intra-op pool to the cores the process may run on)
and `torch.set_num_threads` is given the same number. No XLA flags are set.

Timing rounds alternate the two libraries (and which goes first), one step each per
batch size per round, plus a 2048x2048 float32 matmul on each library; the tables
give medians over rounds. FLOPs per step: XLA's cost analysis of the compiled step for
jaxmusic, `torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls) for
PyTorch. "% of ceiling" is a step's FLOP/s over the faster library's matmul FLOP/s.
The per-layer profile times the forward and backward of each SampleCNN stage alone
(jaxmusic.models.samplecnn.stage) at the first batch size.

    python benchmarks/train_step.py [--batches 8,16] [--rounds 5] [--threads 2] [--no-profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from jaxmusic import config as config_lib
from jaxmusic.convert import clmr
from jaxmusic.data.pipeline import element_spec
from jaxmusic.models import samplecnn
from jaxmusic.objectives.registry import build_objective
from jaxmusic.train.optimizer import make_optimizer
from jaxmusic.train.state import state_factory
from jaxmusic.train.trainer import make_train_step

try:
    from benchmarks import torch_clmr_step
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import torch_clmr_step

RATE = 22050
MATMUL = 2048


def count(tree: Any) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def flops_of(compiled: Any) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per computation
        analysis = analysis[0]
    return float(analysis["flops"])


def seconds(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def jax_state_from_torch(state: dict, model: torch_clmr_step.SimCLR, config: Any) -> dict:
    """`state` with the PyTorch model's weights and running statistics, Adam restarted."""
    tensors = {k: v.detach().numpy() for k, v in model.encoder.state_dict().items()}
    encoder = clmr.samplecnn_variables(tensors, config.model)
    params = jax.tree.map(jnp.asarray, dict(state["params"]))
    params["encoder"] = jax.tree.map(jnp.asarray, encoder["params"])
    linears = [m for m in model.projector if isinstance(m, torch.nn.Linear)]
    # nn.Linear computes x @ W.T; Dense computes x @ kernel.
    params["projector"] = {
        f"Dense_{i}": {"kernel": jnp.asarray(m.weight.detach().numpy().T)} for i, m in enumerate(linears)
    }
    mutable = {"batch_stats": {"encoder": jax.tree.map(jnp.asarray, encoder["batch_stats"])}}
    assert jax.tree.structure(params) == jax.tree.structure(state["params"])
    return {**state, "params": params, "mutable": mutable}


class Stage(nn.Module):
    """One SampleCNN stage alone, as the encoder builds it."""

    channels: int
    kind: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return samplecnn.stage(x, self.channels, self.kind, train=True, momentum=0.9, dtype=jnp.float32)


def profile_stage(layer: Stage, shape: tuple[int, ...], repeats: int) -> tuple[tuple[int, ...], float, float]:
    """(output shape, median ms, XLA FLOPs) of the forward + backward of `layer` on `shape`."""
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, shape)
    variables = layer.init(key, x)
    out_shape = jax.eval_shape(lambda v, x: layer.apply(v, x, mutable=["batch_stats"])[0], variables, x).shape
    cotangent = jax.random.normal(key, out_shape)

    def loss(params, x, stats, cotangent):
        y, _ = layer.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
        return jnp.sum(y * cotangent)

    # The stem's input is data: no gradient flows into it in the step either.
    argnums = (0,) if layer.kind == "stem" else (0, 1)
    args = (variables["params"], x, variables["batch_stats"], cotangent)
    compiled = jax.jit(jax.grad(loss, argnums=argnums)).lower(*args).compile()
    run = lambda: jax.block_until_ready(compiled(*args))
    run()
    return out_shape, 1e3 * statistics.median(seconds(run) for _ in range(repeats)), flops_of(compiled)


def profile(views: int, repeats: int, step_ms: float) -> None:
    """Forward + backward of each stage alone on `views` views: ms, XLA FLOPs, GFLOP/s."""
    model = samplecnn.SampleCNN()
    widths = [model.first_channels, *model.block_channels, model.final_channels]
    kinds = ["stem"] + ["block"] * len(model.block_channels) + ["final"]
    shape: tuple[int, ...] = (views, 59049, 1)
    rows = []
    for i, (channels, kind) in enumerate(zip(widths, kinds, strict=True)):
        out_shape, ms, flops = profile_stage(Stage(channels, kind), shape, repeats)
        name = {"stem": "stem conv/3", "final": "final conv"}.get(kind, f"block {i}")
        rows.append((name, f"{shape[1]}x{shape[2]} -> {out_shape[1]}x{channels}", ms, flops))
        shape = out_shape
    total = sum(r[2] for r in rows)
    print(f"\nPer-stage forward + backward, {views} views, alone (median of {repeats}):")
    print("| stage | frames x channels in -> out | ms | share of stages | GFLOP (XLA) | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for name, shapes, ms, flops in rows:
        print(
            f"| {name} | {shapes} | {ms:.0f} | {ms / total:.0%} | {flops / 1e9:.1f} | {flops / ms / 1e6:.0f} |"
        )
    print(
        f"| all stages | | {total:.0f} | 100% | {sum(r[3] for r in rows) / 1e9:.1f} | "
        f"{sum(r[3] for r in rows) / total / 1e6:.0f} |"
    )
    # Stages alone pay their own dispatch and this machine's noise: compare, don't subtract.
    print(
        f"The whole step at this batch (projector, loss, Adam and metrics included) took "
        f"{step_ms:.0f} ms (median of the rounds above)."
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="8,16", help="clips per step, two views each (48 in the paper)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--threads", type=int, default=2, help="cores for each library")
    p.add_argument("--profile-repeats", type=int, default=3)
    p.add_argument("--no-profile", action="store_true", help="skip the per-stage profile")
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    # Before either library starts its thread pool.
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    torch.set_num_threads(args.threads)

    config = config_lib.load("configs/clmr_samplecnn.py")
    samples = config.data.crop_samples
    manifest = {"sample_rate": RATE, "tasks": {}}  # SimCLR needs no labels
    objective = build_objective(config, manifest)
    tx, _ = make_optimizer(config.optimizer, config.total_steps)
    init = state_factory(objective, tx, element_spec(objective.inputs, samples, manifest))
    t_model, t_step = torch_clmr_step.make_step(
        seed=0, temperature=config.objective.simclr.temperature, learning_rate=config.optimizer.learning_rate
    )
    state = jax_state_from_torch(init(jax.random.PRNGKey(0)), t_model, config)
    state = {**state, "opt_state": tx.init(state["params"])}
    print(
        f"jax {jax.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} threads each (cores {sorted(os.sched_getaffinity(0))}), XLA_FLAGS="
        f"{os.environ.get('XLA_FLAGS', '')!r}"
    )
    print(
        f"encoder parameters: jaxmusic {count(state['params']['encoder']):,}, "
        f"PyTorch {torch_clmr_step.encoder_parameter_count(t_model):,}; "
        f"whole model: jaxmusic {count(state['params']):,}, "
        f"PyTorch {sum(q.numel() for q in t_model.parameters()):,}"
    )

    rng = np.random.default_rng(0)
    inputs = {b: rng.integers(-8000, 8000, (b, 2, samples), np.int16) for b in batches}
    step = jax.jit(make_train_step(objective, tx, None, jax.random.PRNGKey(1)), donate_argnums=0)
    compiled, jax_flops, torch_flops = {}, {}, {}
    for i, b in enumerate(batches):
        batch = {"audio": jnp.asarray(inputs[b])}
        t = time.perf_counter()
        compiled[b] = step.lower(state, batch).compile()
        compile_s = time.perf_counter() - t
        jax_flops[b] = flops_of(compiled[b])
        # First step of each side (warm-up): the same weights and input, so the same loss.
        state, metrics = compiled[b](state, batch)
        with FlopCounterMode(display=False) as counter:
            t_loss = float(t_step(torch.from_numpy(inputs[b])))
        torch_flops[b] = float(counter.get_total_flops())
        weights = "from the same weights" if i == 0 else f"after {i} step(s) on each side"
        print(
            f"batch {b}: compile {compile_s:.0f} s; first loss ({weights}) jaxmusic "
            f"{float(metrics['loss']):.5f}, PyTorch {t_loss:.5f}; GFLOP per step: XLA "
            f"{jax_flops[b] / 1e9:.1f}, FlopCounterMode {torch_flops[b] / 1e9:.1f}"
        )

    a = jnp.asarray(rng.standard_normal((MATMUL, MATMUL), np.float32))
    ta = torch.from_numpy(np.array(a))  # a writable copy
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, a))
    matmul_flops = 2 * MATMUL**3
    times: dict[tuple[str, int], list[float]] = {(side, b): [] for side in ("jax", "torch") for b in batches}
    mm: dict[str, list[float]] = {"jax": [], "torch": []}

    def run_jax(b: int) -> None:
        nonlocal state
        batch = {"audio": jnp.asarray(inputs[b])}
        t = time.perf_counter()
        state, metrics = compiled[b](state, batch)
        jax.block_until_ready((state, metrics))
        times["jax", b].append(time.perf_counter() - t)

    def run_torch(b: int) -> None:
        views = torch.from_numpy(inputs[b])
        t = time.perf_counter()
        t_step(views)
        times["torch", b].append(time.perf_counter() - t)

    for r in range(args.rounds):
        for b in batches:
            order = (run_jax, run_torch) if r % 2 == 0 else (run_torch, run_jax)
            for run in order:
                # A pause lets the other library's idle threads stop spinning.
                time.sleep(0.2)
                run(b)
        for _ in range(3):
            mm["jax"].append(seconds(lambda: jax.block_until_ready(dot(a, a))))
            mm["torch"].append(seconds(lambda: torch.mm(ta, ta)))
        print(
            f"round {r + 1}/{args.rounds}: "
            + ", ".join(
                f"b{b} jax {times['jax', b][-1]:.2f} s torch {times['torch', b][-1]:.2f} s" for b in batches
            ),
            flush=True,
        )

    gflops = {side: matmul_flops / statistics.median(ts) / 1e9 for side, ts in mm.items()}
    ceiling = max(gflops.values())
    print(
        f"\nmatmul {MATMUL}x{MATMUL} float32 (median): jax {gflops['jax']:.0f} GFLOP/s, "
        f"torch {gflops['torch']:.0f} GFLOP/s; ceiling {ceiling:.0f} GFLOP/s"
    )
    print(f"Median over {args.rounds} interleaved rounds:")
    print(
        "| batch (clips / views) | jaxmusic ms/step | PyTorch ms/step | speed ratio (torch time / jax time) "
        "| jax % of ceiling | torch % of ceiling |"
    )
    print("|---|---|---|---|---|---|")
    median = {}
    for b in batches:
        tj, tt = statistics.median(times["jax", b]), statistics.median(times["torch", b])
        median[b] = tj
        fj = jax_flops[b] / tj / 1e9 / ceiling
        ft = torch_flops[b] / tt / 1e9 / ceiling
        print(f"| {b} / {2 * b} | {1e3 * tj:.0f} | {1e3 * tt:.0f} | {tt / tj:.2f} | {fj:.0%} | {ft:.0%} |")
    if not args.no_profile:
        profile(2 * batches[0], args.profile_repeats, 1e3 * median[batches[0]])


if __name__ == "__main__":
    main()
