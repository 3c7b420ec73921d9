"""Benchmark: cropped, augmented view pairs per second, jaxmusic vs a CLMR-style CPU pipeline.

jaxmusic: Grain reads ArrayRecord shards and crops two 59,049-sample views per clip
(int16), the batch goes to the device and the full CLMR chain runs there, jitted and
vmapped, exactly as in the train step. Reference (reference_clmr_pipeline.py): per item,
decode the WAV file, crop, augment each view in NumPy/SciPy on the CPU.

Throughput is reported per wall second and per CPU-second consumed by this process
(user + system, all threads), i.e. per CPU core kept busy; the ratio is taken on the
latter, measured in the same run.

    python benchmarks/pipeline_throughput.py [--batches 6] [--reference-items 24] [--workers 0]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from corpus import make_corpus
from reference_clmr_pipeline import load_pair

from jaxmusic import config as config_lib
from jaxmusic.augment import AugmentSpec, augment_batch
from jaxmusic.data.pipeline import Inputs, train_dataset

RATE, CROP, BATCH = 22050, 59049, 48


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def measure(fn, items: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return items / (time.perf_counter() - wall), items / (cpu_seconds() - cpu)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--reference-items", type=int, default=24)
    p.add_argument("--workers", type=int, default=0, help="Grain worker processes")
    p.add_argument("--clips", type=int, default=96)
    args = p.parse_args()
    config = config_lib.load("configs/clmr_samplecnn.py")
    spec = AugmentSpec.from_config(config.augment, RATE)
    with tempfile.TemporaryDirectory() as tmp:
        paths, prepared = make_corpus(Path(tmp), args.clips, 30.0, RATE)

        ds = train_dataset(prepared, "train", batch_size=BATCH, crop_samples=CROP, inputs=Inputs(), seed=0,
                           worker_count=args.workers)  # fmt: skip
        it = iter(ds)
        augment = jax.jit(lambda v, k: augment_batch(v.astype(jnp.float32) / 32768.0, k, spec))
        jax.block_until_ready(augment(jnp.asarray(next(it)["audio"]), jax.random.PRNGKey(0)))  # compile

        def ours() -> None:
            for step in range(args.batches):
                views = jax.device_put(next(it)["audio"])
                jax.block_until_ready(augment(views, jax.random.PRNGKey(step)))

        ours_rate = measure(ours, args.batches * BATCH)

        def host_only() -> None:  # what the data workers do: read, crop, batch
            for _ in range(args.batches):
                next(it)

        host_rate = measure(host_only, args.batches * BATCH)
        if hasattr(it, "close"):
            it.close()

        rng = np.random.default_rng(0)
        load_pair(paths[0], CROP, rng)  # warm imports and librosa's numba cache

        def reference() -> None:
            for i in range(args.reference_items):
                load_pair(paths[i % len(paths)], CROP, rng)

        ref_rate = measure(reference, args.reference_items)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {BATCH}, crop {CROP} at {RATE} Hz")
    print("| pipeline | pairs/s | pairs per CPU-second | vs reference (per CPU-second) |")
    print("|---|---|---|---|")
    print(f"| jaxmusic (Grain + on-device chain) | {ours_rate[0]:.1f} | {ours_rate[1]:.1f} | "
          f"{ours_rate[1] / ref_rate[1]:.2f}x |")  # fmt: skip
    print(f"| jaxmusic host side only (Grain read + crop + batch) | {host_rate[0]:.1f} | {host_rate[1]:.1f} | "
          f"{host_rate[1] / ref_rate[1]:.2f}x |")  # fmt: skip
    print(
        f"| reference (decode + NumPy/SciPy chain per item) | {ref_rate[0]:.1f} | {ref_rate[1]:.1f} | 1.00x |"
    )


if __name__ == "__main__":
    main()
