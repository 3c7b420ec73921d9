"""Benchmark: cropped, augmented view pairs per second, jaxmusic vs a CLMR-style CPU pipeline.

jaxmusic: Grain reads ArrayRecord shards and crops two 59,049-sample views per clip
(int16), the batch goes to the device and the full CLMR chain runs there, jitted and
vmapped, exactly as in the train step. Reference (reference_clmr_pipeline.py): per item,
decode the WAV file, crop, augment each view in NumPy/SciPy on the CPU.

The host side (what data workers do: read, crop, batch) is timed three ways on the same
audio: the pipeline as it was before dataset schema 2 (Grain's shuffle over
zstd-compressed shards of whole records: each crop decompresses the whole track), the
current pipeline over such a dataset prepared before, and the current pipeline over a
dataset prepared now (uncompressed, chunked: a crop reads only the chunks it overlaps).

Throughput is reported per wall second and per CPU-second consumed by this process
(user + system, all threads), i.e. per CPU core kept busy; the ratio is taken on the
latter, measured in the same run. Host-side rows are the median of `--repeats`
interleaved runs, so that load from other processes falls on all of them alike; each
run's CPU is counted from an idle, full prefetch buffer to the next, so read-ahead
neither flatters a row nor bills another.

    python benchmarks/pipeline_throughput.py [--batches 12] [--reference-items 24] [--workers 0]
        [--read-threads 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
import statistics
import tempfile
import time
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
from corpus import legacy_copy, make_corpus
from reference_clmr_pipeline import load_pair

from jaxmusic import config as config_lib
from jaxmusic.augment import AugmentSpec, augment_batch
from jaxmusic.data import records
from jaxmusic.data.pipeline import IndependentCrops, Inputs, train_dataset

RATE, CROP, BATCH = 22050, 59049, 48


def cpu_seconds() -> float:
    """CPU time of this process and its children, live ones (Grain's workers) included."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime
    try:
        import psutil
    except ImportError:  # then live workers are not counted: run with --workers 0
        return total
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def settle(timeout: float = 10.0) -> None:
    """Wait until prefetching threads and workers are idle (their buffers full)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        before = cpu_seconds()
        time.sleep(0.1)
        if cpu_seconds() - before < 0.003:
            return


def measure(fn, items: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return items / (time.perf_counter() - wall), items / (cpu_seconds() - cpu)


@dataclasses.dataclass(frozen=True)
class WholeRecordCrops:
    """The element function as it was: decode the whole record, then crop it."""

    crop: IndependentCrops

    def __call__(self, record: bytes, rng: np.random.Generator) -> dict:
        return {"audio": self.crop(records.decode_audio(record), rng)}


def before(data_dir: str, workers: int, threads: int) -> grain.IterDataset:
    """The host pipeline before schema 2, rebuilt from the same Grain calls."""
    source = grain.sources.ArrayRecordDataSource(records.split_paths(data_dir, "train"))
    ds = grain.MapDataset.source(source).seed(0).shuffle().repeat(None)
    ds = ds.random_map(WholeRecordCrops(IndependentCrops(CROP, 2)))
    options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=4 * BATCH)
    it = ds.to_iter_dataset(options).batch(BATCH)
    if workers:
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return it


def host_rate(make, batches: int) -> tuple[float, float]:
    """Pairs per wall second and per CPU-second of reading, cropping and batching.

    A fresh iterator, started and idle before the clock starts; its CPU is counted until
    it is idle again, so the work of refilling its prefetch buffer is included and no
    other iterator's is.
    """
    it = iter(make())
    next(it)
    settle()
    wall, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(batches):
        next(it)
    wall = time.perf_counter() - wall
    settle()
    cpu = cpu_seconds() - cpu
    if hasattr(it, "close"):
        it.close()
    return batches * BATCH / wall, batches * BATCH / cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--reference-items", type=int, default=24)
    p.add_argument("--workers", type=int, default=0, help="Grain worker processes")
    p.add_argument("--read-threads", type=int, default=4, help="Grain read threads (data.read_threads)")
    p.add_argument("--clips", type=int, default=96)
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs of each host-side row")
    args = p.parse_args()
    config = config_lib.load("configs/clmr_samplecnn.py")
    spec = AugmentSpec.from_config(config.augment, RATE)
    with tempfile.TemporaryDirectory() as tmp:
        paths, prepared = make_corpus(Path(tmp), args.clips, 30.0, RATE)
        old = legacy_copy(prepared, Path(tmp) / "prepared-before")

        def ours(data_dir: str) -> grain.IterDataset:
            return train_dataset(data_dir, "train", batch_size=BATCH, crop_samples=CROP, inputs=Inputs(), seed=0,
                                 worker_count=args.workers, read_threads=args.read_threads)  # fmt: skip

        threads = args.read_threads
        hosts = {
            "before: Grain shuffle, compressed whole records": lambda: before(old, args.workers, threads),
            "now, on a dataset prepared before (compressed whole records)": lambda: ours(old),
            "now (uncompressed, crops read by chunk)": lambda: ours(prepared),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in hosts}
        for _ in range(args.repeats):
            for name, make in hosts.items():
                runs[name].append(host_rate(make, args.batches))
        host = {name: tuple(statistics.median(r[i] for r in rs) for i in (0, 1)) for name, rs in runs.items()}

        it = iter(ours(prepared))
        augment = jax.jit(lambda v, k: augment_batch(v.astype(jnp.float32) / 32768.0, k, spec))
        jax.block_until_ready(augment(jnp.asarray(next(it)["audio"]), jax.random.PRNGKey(0)))  # compile

        def device() -> None:
            for step in range(args.batches):
                views = jax.device_put(next(it)["audio"])
                jax.block_until_ready(augment(views, jax.random.PRNGKey(step)))

        ours_rate = measure(device, args.batches * BATCH)
        if hasattr(it, "close"):
            it.close()

        rng = np.random.default_rng(0)
        load_pair(paths[0], CROP, rng)  # warm imports and librosa's numba cache

        def reference() -> None:
            for i in range(args.reference_items):
                load_pair(paths[i % len(paths)], CROP, rng)

        ref_rate = measure(reference, args.reference_items)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {BATCH}, crop {CROP} at {RATE} Hz, "
          f"{args.clips} train clips of 30 s, {args.workers} Grain workers, {args.read_threads} read threads")  # fmt: skip
    print("| pipeline | pairs/s | pairs per CPU-second | vs reference (per CPU-second) |")
    print("|---|---|---|---|")
    print(f"| jaxmusic (Grain + on-device chain) | {ours_rate[0]:.1f} | {ours_rate[1]:.1f} | "
          f"{ours_rate[1] / ref_rate[1]:.2f}x |")  # fmt: skip
    for name, (wall, cpu) in host.items():
        print(f"| host side, {name} | {wall:.1f} | {cpu:.1f} | {cpu / ref_rate[1]:.2f}x |")
    print(
        f"| reference (decode + NumPy/SciPy chain per item) | {ref_rate[0]:.1f} | {ref_rate[1]:.1f} | 1.00x |"
    )


if __name__ == "__main__":
    main()
