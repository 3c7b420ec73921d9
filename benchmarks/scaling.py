"""Benchmark: the train step over 1-8 devices and 2 processes, with and without 'fsdp' (CPU-simulated).

The quickstart SampleCNN's whole train step (augmentation, NT-Xent over the global
batch, Adam), jitted as the trainer jits it: the state sharded by `state_shardings`,
the batch split over every mesh axis. Each mesh runs in the same child process of
8 simulated CPU devices (its first N devices); the 2-process rows run the step under
`jax.distributed` on 127.0.0.1, 2 devices per process. Per mesh: steps/s (the same
global batch each time, so the ratio to 1 device is the speed-up), FLOPs per step
from XLA's cost analysis (summed over devices), and the bytes each device sends into
collectives per step, from the operands of the all-reduce, all-gather,
reduce-scatter, collective-permute and all-to-all ops of the compiled program.
Simulated devices share this machine's cores, so steps/s here says what the program
costs, not what N chips would give; FLOPs and bytes are what the program would do.

    python benchmarks/scaling.py [--batch 16] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import portpicker

from jaxmusic import config as config_lib
from jaxmusic.augment import AugmentSpec
from jaxmusic.data.pipeline import element_spec
from jaxmusic.objectives.registry import build_objective
from jaxmusic.train.mesh import batch_sharding, make_mesh, replicated, state_shardings
from jaxmusic.train.optimizer import make_optimizer
from jaxmusic.train.state import state_factory
from jaxmusic.train.trainer import make_train_step

CONFIG = "configs/quickstart.py"
RATE = 8000
SINGLE = ["1", "2", "4", "2,2", "1,4", "8", "4,2"]  # in one process of 8 devices
MULTI = ["4", "2,2"]  # 2 processes x 2 devices
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")
# `%name = TYPE op(%operand, ...)`, one HLO instruction; TYPE may be a tuple.
INSTRUCTION = re.compile(r"%([\w.\-]+) = (.+?) ([a-z][\w\-]*)\(([^)]*)\)")
ARRAY = re.compile(r"\b(pred|[a-z]+\d+)\[([\d,]*)\]")
ITEMSIZE = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4}
ITEMSIZE.update({"u32": 4, "f64": 8, "s64": 8, "u64": 8, "c64": 8, "c128": 16})


def type_bytes(hlo_type: str) -> int:
    """Bytes of an HLO type: an array `f32[3,64]{1,0}` or a tuple of them."""
    return sum(
        ITEMSIZE[t] * math.prod(int(d) for d in dims.split(",") if d) for t, dims in ARRAY.findall(hlo_type)
    )


def collective_bytes(hlo: str) -> int:
    """Bytes of the operands of every collective in a compiled HLO module's text (per device).

    The compiled text names operands without their types, so the types come from the
    instructions that define them. An async pair counts once (its -start); an op in
    a loop body counts once.
    """
    defined: dict[str, int] = {}
    total = 0
    for name, hlo_type, op, operands in INSTRUCTION.findall(hlo):
        defined[name] = type_bytes(hlo_type)
        if op.removesuffix("-start") in COLLECTIVES:
            total += sum(defined[o] for o in re.findall(r"%([\w.\-]+)", operands))
    return total


def measure(mesh_arg: str, batch: int, steps: int) -> dict:
    """Compile the train step for one mesh, run it, and say what it costs."""
    config = config_lib.load(CONFIG)
    manifest = {"sample_rate": RATE, "tasks": {}}  # SimCLR needs no labels
    objective = build_objective(config, manifest)
    tx, learning_rate = make_optimizer(config.optimizer, config.total_steps)
    init = state_factory(objective, tx, element_spec(objective.inputs, config.data.crop_samples, manifest))
    mesh = make_mesh(tuple(int(d) for d in mesh_arg.split(",")))
    key = jax.random.PRNGKey(0)
    state_sharding = state_shardings(jax.eval_shape(init, key), mesh)
    data_sharding = batch_sharding(mesh)
    state = jax.jit(init, out_shardings=state_sharding)(key)
    step = jax.jit(
        make_train_step(objective, tx, AugmentSpec.from_config(config.augment, RATE), key, 1, learning_rate),
        in_shardings=(state_sharding, data_sharding),
        out_shardings=(state_sharding, replicated(mesh)),
        donate_argnums=0,
    )
    local = batch // jax.process_count()
    rng = np.random.default_rng(jax.process_index())
    views = rng.integers(-8000, 8000, (local, 2, config.data.crop_samples), np.int16)
    batch_arrays = {"audio": jax.make_array_from_process_local_data(data_sharding, views)}
    compiled = step.lower(state, batch_arrays).compile()
    state, metrics = compiled(state, batch_arrays)  # warm-up
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = compiled(state, batch_arrays)
    jnp.asarray(metrics["loss"]).block_until_ready()
    elapsed = time.perf_counter() - start
    sharded = sum("fsdp" in s.spec for s in jax.tree.leaves(state_sharding))
    return {
        "devices": mesh.devices.size,
        "processes": jax.process_count(),
        "mesh": mesh_arg,
        "steps_per_s": steps / elapsed,
        "flops": compiled.cost_analysis()["flops"] * mesh.devices.size,
        "bytes": collective_bytes(compiled.as_text()),
        "sharded_leaves": sharded,
    }


def shape_text(mesh_arg: str) -> str:
    return f"({mesh_arg},)" if "," not in mesh_arg else f"({mesh_arg.replace(',', ', ')})"


def child(args: argparse.Namespace) -> None:
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    for mesh_arg in args.meshes.split(";"):
        row = measure(mesh_arg, args.batch, args.steps)
        if jax.process_index() == 0:
            print("ROW " + json.dumps(row), flush=True)


def spawn(devices: int, meshes: list[str], args: argparse.Namespace, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    cmd = [sys.executable, __file__, "--child", "--meshes", ";".join(meshes)]
    cmd += ["--batch", str(args.batch), "--steps", str(args.steps), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows_of(procs: list[subprocess.Popen]) -> list[dict]:
    rows = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode:
            sys.exit(f"a benchmark process failed:\n{err[-3000:]}")
        rows += [json.loads(line[4:]) for line in out.splitlines() if line.startswith("ROW ")]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16, help="global clips per step (x 2 views)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per mesh, after one warm-up")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--meshes", help=argparse.SUPPRESS)
    p.add_argument("--coordinator", help=argparse.SUPPRESS)
    p.add_argument("--num-processes", type=int, help=argparse.SUPPRESS)
    p.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    rows = rows_of([spawn(8, SINGLE, args, [])])
    address = f"127.0.0.1:{portpicker.pick_unused_port()}"
    multi = [f"--coordinator={address}", "--num-processes=2"]
    rows += rows_of([spawn(2, MULTI, args, [*multi, f"--process-id={i}"]) for i in range(2)])
    one = next(r for r in rows if r["devices"] == 1)
    print(
        f"jax {jax.__version__}, CPU-simulated devices on {os.cpu_count()} cores; "
        f"quickstart SampleCNN, global batch {args.batch} x 2 views; {args.steps} timed steps per mesh"
    )
    print(
        "| devices | mesh | steps/s | x 1 device | FLOPs/step | x 1 device | bytes communicated/step "
        "(per device) | leaves on 'fsdp' |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        where = f"{r['processes']} x {r['devices'] // r['processes']}" if r["processes"] > 1 else r["devices"]
        print(
            f"| {where} | {shape_text(r['mesh'])} | {r['steps_per_s']:.2f} | {r['steps_per_s'] / one['steps_per_s']:.2f} "
            f"| {r['flops'] / 1e9:.1f} G | {r['flops'] / one['flops']:.2f} | {r['bytes'] / 1e6:.2f} MB "
            f"| {r['sharded_leaves']} |"
        )


if __name__ == "__main__":
    main()
