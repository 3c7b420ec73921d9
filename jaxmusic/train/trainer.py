"""The training loop: one jit-compiled step over a device mesh, resumable exactly.

Sections follow the order things happen: checks, mesh, input, model and optimizer,
shardings, step, checkpoint, loop. The train state is a plain dict
{params, mutable, opt_state, step}; randomness for step s is fold_in(seed, s), so a
resumed run draws what an uninterrupted one would have drawn. What is optimised is
the objective's business (objectives/base.py): this file names none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from jaxmusic.augment import AugmentSpec
from jaxmusic.config import ConfigError, validate
from jaxmusic.data import records, subsets
from jaxmusic.data.pipeline import element_spec, eval_dataset, train_dataset
from jaxmusic.data.sources import open_split, read_manifest
from jaxmusic.models.registry import check_input
from jaxmusic.objectives.base import Objective
from jaxmusic.objectives.registry import build_objective
from jaxmusic.paths import append_text, as_path, is_remote
from jaxmusic.preprocess import Batch, make_preprocess
from jaxmusic.train import checkpoint
from jaxmusic.train.mesh import batch_sharding, check_batch, make_mesh, replicated, state_shardings
from jaxmusic.train.metrics_log import MetricsLog
from jaxmusic.train.optimizer import make_optimizer
from jaxmusic.train.state import state_factory

STATE_FINITE = "state_finite"  # a step's flag, checked and not logged
Step = Callable[[dict[str, Any], Batch], tuple[dict[str, Any], dict[str, jax.Array]]]


def _micro_batches(batch: Batch, k: int) -> Batch:
    # Micro-batch j takes rows j, j + k, ...: every device contributes its share of
    # each micro-batch, so no rows move between devices.
    return jax.tree.map(lambda x: x.reshape(x.shape[0] // k, k, *x.shape[1:]).swapaxes(0, 1), batch)


def make_train_step(
    objective: Objective,
    tx: optax.GradientTransformation,
    spec: AugmentSpec | None,
    step_key: jax.Array,
    accumulation_steps: int = 1,
    learning_rate: optax.Schedule | None = None,
) -> Step:
    """`step(state, batch) -> (state, metrics)`: preprocess on device, loss, gradient, update.

    With `accumulation_steps` k > 1 the batch is cut into k micro-batches whose
    gradients are averaged, scanning so that only one micro-batch's activations live
    at a time: for a loss that is a mean over independent examples this is the update
    of the whole batch (batch statistics, as everywhere, are per micro-batch).
    `spec=None` skips augmentation (for measuring what the chain costs).
    """
    preprocess = make_preprocess(spec)
    grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
    k = accumulation_steps

    def train_step(state: dict[str, Any], batch: Batch) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        key = jax.random.fold_in(step_key, state["step"])
        aug_key, loss_key = jax.random.split(key)
        batch = preprocess(batch, aug_key)
        if k == 1:
            (_loss, (mutable, metrics)), grads = grad_fn(state["params"], state["mutable"], batch, loss_key)
        else:

            def accumulate(carry, xs):
                grads, mutable = carry
                i, micro = xs
                (_loss, (mutable, m)), g = grad_fn(
                    state["params"], mutable, micro, jax.random.fold_in(loss_key, i)
                )
                return (jax.tree.map(jnp.add, grads, g), mutable), m

            zeros = jax.tree.map(jnp.zeros_like, state["params"])
            (grads, mutable), per_micro = jax.lax.scan(
                accumulate, (zeros, state["mutable"]), (jnp.arange(k), _micro_batches(batch, k))
            )
            grads = jax.tree.map(lambda g: g / k, grads)
            metrics = jax.tree.map(lambda m: m.mean(axis=0), per_micro)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new_state = {
            "params": optax.apply_updates(state["params"], updates),
            "mutable": mutable,
            "opt_state": opt_state,
            "step": state["step"] + 1,
        }
        # Checked on the host before any save: a finite loss does not make the update finite.
        finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves((new_state["params"], opt_state))]
        metrics = {**metrics, "grad_norm": optax.tree.norm(grads), STATE_FINITE: jnp.all(jnp.stack(finite))}
        if learning_rate is not None:
            metrics["learning_rate"] = learning_rate(state["step"])
        return new_state, metrics

    return train_step


def make_eval_step(objective: Objective, step_key: jax.Array) -> Callable[[dict[str, Any], Batch], dict]:
    """`eval(state, batch) -> outputs`: the objective's validation outputs, no augmentation."""
    preprocess = make_preprocess(None)

    def eval_step(state: dict[str, Any], batch: Batch) -> dict:
        return objective.evaluate(state["params"], state["mutable"], preprocess(batch, None), step_key)

    return eval_step


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite."""


@dataclasses.dataclass(frozen=True)
class Checked:
    """What `check_config` established: everything the run needs that bad input can break."""

    spec: AugmentSpec
    objective: Objective
    manifest: dict[str, Any]
    budget: dict | None  # the limited-data budget's selection; None for the full split


def check_config(config: ml_collections.ConfigDict, workdir: Path | None = None) -> Checked:
    """Every check that can fail on bad input, before anything is compiled; `workdir` is
    where a resumed run keeps its objective's assets (see objectives/registry.py)."""
    validate(config)
    for key in ("total_steps", "log_every_steps", "checkpoint_every_steps", "batch_size"):
        if config[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {config[key]}")
    if not config.data.dir:
        raise ConfigError("data.dir is empty: prepare a dataset first (see `jaxmusic prepare --help`)")
    manifest = read_manifest(config.data.dir)
    check_input(config.model, config.data.crop_samples, manifest["sample_rate"])
    objective = build_objective(
        config, manifest, workdir if workdir is not None and workdir.exists() else None
    )
    make_optimizer(config.optimizer, config.total_steps)  # its own checks
    k = config.optimizer.accumulation_steps
    if k > 1 and not objective.accumulable:
        raise ConfigError(
            f"objective.name={config.objective.name} cannot accumulate gradients (its loss couples the "
            "examples of a batch): set optimizer.accumulation_steps=1"
        )
    if config.batch_size % k:
        raise ConfigError(f"batch_size {config.batch_size} does not divide into {k} accumulation steps")
    try:
        spec = AugmentSpec.from_config(config.augment, manifest["sample_rate"])
    except ValueError as e:
        raise ConfigError(f"augment: {e}") from None
    budget = None
    if config.data.budget != "full":
        try:
            budget = subsets.select(
                config.data.dir, config.data.train_split, config.data.budget,
                config.data.budget_seed, tuple(config.data.budget_classes),
            )  # fmt: skip
        except ValueError as e:
            raise ConfigError(f"data.budget: {e}") from None
    if config.eval.every_steps:
        split = config.eval.split
        if split not in manifest["splits"]:
            raise ConfigError(
                f"eval.split '{split}' is not a split of {config.data.dir} ({', '.join(manifest['splits'])})"
            )
        n, b = len(open_split(config.data.dir, split)), eval_batch_size(config)
        if n < b:
            raise ConfigError(
                f"eval.split '{split}' has {n} clips, fewer than one batch of {b}: set eval.batch_size"
            )
    return Checked(spec, objective, manifest, budget)


def data_seed(config: ml_collections.ConfigDict) -> int:
    """The seed of the training data's order and crops: `data.shuffle_seed`, or `seed` when
    that is -1 (the default), so one `--config.seed` changes the whole run."""
    return config.seed if config.data.shuffle_seed == -1 else config.data.shuffle_seed


def eval_batch_size(config: ml_collections.ConfigDict) -> int:
    """The global batch of evaluation during training: by default one micro-batch, the
    most the training step ever holds in memory at once."""
    return config.eval.batch_size or config.batch_size // config.optimizer.accumulation_steps


def check_workdir(workdir: Path) -> None:
    """Refuse, before compiling, a workdir that cannot be written or has a file in the way."""
    for path in (workdir, *workdir.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(
                    f"--workdir {workdir}: {path} is a file, not a folder: choose another --workdir"
                )
            break
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create --workdir {workdir} ({e.strerror}): choose a writable folder"
        ) from None
    ckpt = checkpoint.checkpoints_dir(workdir)
    if ckpt.exists() and not ckpt.is_dir():
        raise ConfigError(f"{ckpt} is a file, where checkpoints go: move it away or choose another --workdir")
    probe = workdir / f".write-test-{jax.process_index()}"
    try:
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as e:
        probe.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write to --workdir {workdir} ({e.strerror}): choose a writable folder"
        ) from None


def check_free_space(workdir: Path, state_bytes: int) -> None:
    """Refuse, before compiling, a disk without room for the next checkpoint."""
    # A checkpoint is about the state's size; keep room for one more than is kept, as
    # Orbax writes the new one before it deletes the oldest.
    if is_remote(workdir):
        return  # an object store has no free-space figure to read
    need = 2 * state_bytes
    free = shutil.disk_usage(workdir).free
    if free < need:
        raise ConfigError(
            f"--workdir {workdir} has {free / 2**20:.0f} MiB free, a checkpoint needs about "
            f"{need / 2**20:.0f} MiB: free space or choose another --workdir"
        )


class _Preempted:
    """Turns SIGTERM into a flag the loop checks, so the run can save and exit cleanly."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _Preempted:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, *_: Any) -> None:
        self.requested = True

    def __exit__(self, *_: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Train from scratch or resume from `workdir`; returns the final metrics and step."""
    workdir = as_path(workdir)
    # --- checks (before any compilation) ---
    checked = check_config(config, workdir)
    objective, manifest, budget = checked.objective, checked.manifest, checked.budget
    mesh = make_mesh(tuple(config.mesh_shape))
    local_batch = check_batch(config.batch_size, mesh)
    per_device, k = config.batch_size // mesh.devices.size, config.optimizer.accumulation_steps
    if per_device % k:
        # Each device must hold whole shares of every micro-batch, or XLA reshards in the scan.
        raise ConfigError(
            f"batch_size {config.batch_size} leaves {per_device} rows per device, which do not divide "
            f"into {k} accumulation steps: use a multiple of {mesh.devices.size * k}"
        )
    eval_local = check_batch(eval_batch_size(config), mesh) if config.eval.every_steps else 0
    check_workdir(workdir)

    # --- input: the elements the objective asks for ---
    dataset = train_dataset(
        config.data.dir,
        config.data.train_split,
        batch_size=local_batch,
        crop_samples=config.data.crop_samples,
        inputs=objective.inputs,
        seed=data_seed(config),
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        worker_count=config.data.worker_count,
        worker_buffer_size=config.data.worker_buffer_size,
        read_threads=config.data.read_threads,
        indices=None if budget is None else budget["indices"],
    )
    data_iter = iter(dataset)
    data_sharding = batch_sharding(mesh)
    batch_spec = element_spec(objective.inputs, config.data.crop_samples, manifest)

    # --- model, optimizer, state ---
    tx, learning_rate = make_optimizer(config.optimizer, config.total_steps)
    init_state = state_factory(objective, tx, batch_spec)
    init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))

    # --- sharding: state by the mesh's rules, batch split over the data axes ---
    abstract = jax.eval_shape(init_state, init_key)
    check_free_space(workdir, sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(abstract)))
    state_sharding = state_shardings(abstract, mesh)
    state = jax.jit(init_state, out_shardings=state_sharding)(init_key)

    # --- step ---
    train_step = make_train_step(
        objective, tx, checked.spec, step_key, config.optimizer.accumulation_steps, learning_rate
    )
    step_fn = jax.jit(
        train_step,
        in_shardings=(state_sharding, data_sharding),
        out_shardings=(state_sharding, replicated(mesh)),
        donate_argnums=0,
    )

    # --- evaluation on the validation split ---
    eval_fn = jax.jit(
        make_eval_step(objective, step_key),
        in_shardings=(state_sharding, data_sharding),
        out_shardings=replicated(mesh),
    )

    def evaluate(state: dict[str, Any]) -> dict[str, float]:
        batches = eval_dataset(
            config.data.dir, config.eval.split, batch_size=eval_local, crop_samples=config.data.crop_samples,
            inputs=objective.inputs, seed=config.eval.seed,
            process_index=jax.process_index(), process_count=jax.process_count(),
        )  # fmt: skip
        outputs = [jax.device_get(eval_fn(state, _to_global(data_sharding, batch))) for batch in batches]
        scalars = {k: np.stack([o[k] for o in outputs]) for k in outputs[0] if k != "examples"}
        if "examples" in outputs[0]:
            scalars["examples"] = jax.tree.map(
                lambda *x: np.concatenate(x), *[o["examples"] for o in outputs]
            )
        # Whole batches only: the split's remainder is left out, and the count says so.
        summary = {"clips": float(len(outputs) * eval_batch_size(config)), **objective.summarize(scalars)}
        return {f"valid_{k}": v for k, v in summary.items()}

    # --- checkpoint: resume if the workdir has one ---
    target = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, state_sharding
    )
    say = print if jax.process_index() == 0 else (lambda _: None)
    restored = checkpoint.restore_latest(workdir, target, data_iter, config, warn=say)
    if restored is not None:
        state = restored.state
        say(f"resuming from step {restored.step} in {workdir}")
        if restored.changes and jax.process_index() == 0:
            changes = {k: {"was": a, "now": b} for k, (a, b) in restored.changes.items()}
            say("  with " + ", ".join(f"{k} {v['was']} -> {v['now']}" for k, v in changes.items()))
            append_text(
                workdir / "resumes.jsonl", json.dumps({"step": restored.step, "changes": changes}) + "\n"
            )
    mngr = checkpoint.manager(workdir, config)
    start_step = int(state["step"])
    if jax.process_index() == 0:
        records.write_json_atomic(workdir / "config.json", config.to_dict())
        # What the objective needs besides its parameters (a tokenizer), kept beside them.
        for name, data in getattr(objective, "assets", dict)().items():
            records.write_bytes_atomic(workdir / name, data)
        if budget is not None:
            records.write_json_atomic(workdir / "budget.json", budget)
    if start_step >= config.total_steps:
        mngr.close()
        if hasattr(data_iter, "close"):
            data_iter.close()
        return {"step": start_step, "finished": True}

    # --- loop ---
    log = MetricsLog(workdir)
    pending: list[dict[str, jax.Array]] = []
    wait = 0.0
    interval_start = time.perf_counter()
    last_good = restored.step if restored is not None else None
    bar = tqdm(
        total=config.total_steps,
        initial=start_step,
        unit="step",
        desc="train",
        disable=not config.progress_bar or jax.process_index() != 0,
    )
    summary: dict[str, float] = {}

    def diverged(what: str, step: int) -> TrainingDiverged:
        where = (
            f"the last good checkpoint is step {last_good} in {workdir}: resume from it with a lower "
            "learning rate (run the same command with --config.optimizer.learning_rate=SMALLER; "
            "the change is recorded in resumes.jsonl)"
            if last_good is not None
            else "no checkpoint was saved yet: lower --config.optimizer.learning_rate and start again"
        )
        return TrainingDiverged(f"{what} at step {step}; {where}")

    def flush(step: int, with_eval: bool = False) -> None:
        # Pulling metrics to the host syncs with the device; do it once per interval.
        nonlocal pending, wait, interval_start
        if not pending:
            return
        values = jax.device_get(pending)
        bar.update(1)  # the interval's last step, now finished
        first = step - len(values) + 1
        for i, v in enumerate(values):
            if not np.isfinite(v["loss"]):
                raise diverged(f"loss is {v['loss']}", first + i)
            if not v.pop(STATE_FINITE):
                raise diverged("the update made parameters or optimizer state non-finite", first + i)
        elapsed = time.perf_counter() - interval_start
        summary.clear()
        summary.update({k: float(np.mean([v[k] for v in values])) for k in values[0]})
        summary.update(
            steps_per_s=len(values) / elapsed,
            data_wait_s=wait,
            data_wait_frac=wait / elapsed,
        )
        if with_eval:  # after the losses are known finite
            summary.update(evaluate(state))
        log.write(step, summary)
        bar.set_postfix(loss=f"{summary['loss']:.4f}", data=f"{100 * wait / elapsed:.0f}%")
        pending, wait, interval_start = [], 0.0, time.perf_counter()

    # One process: our own SIGTERM handler. Several: Orbax's preemption agreement, so that
    # every host saves the same step (JAX's coordination service watches for SIGTERM).
    multi = jax.process_count() > 1
    with contextlib.nullcontext(None) if multi else _Preempted() as preempt:
        try:
            for step in range(start_step + 1, config.total_steps + 1):
                t0 = time.perf_counter()
                batch = _to_global(data_sharding, next(data_iter))
                wait += time.perf_counter() - t0
                state, metrics = step_fn(state, batch)
                if pending:
                    # Keep one step in flight, no more: the device stays busy while the
                    # host fetches the next batch, and the progress bar counts finished
                    # steps rather than dispatched ones.
                    jax.block_until_ready(pending[-1])
                    bar.update(1)
                pending.append(metrics)
                # Read once: a signal arriving later in this iteration is acted on at the
                # next step, so the step announced below is always the step saved.
                stop = mngr.reached_preemption(step) if multi else preempt.requested
                save_now = step % config.checkpoint_every_steps == 0 or step == config.total_steps or stop
                # Metrics are checked before every save, so a non-finite loss is never
                # written into a checkpoint.
                eval_now = bool(config.eval.every_steps) and (
                    step % config.eval.every_steps == 0 or step == config.total_steps
                )
                if step % config.log_every_steps == 0 or save_now or eval_now:
                    flush(step, with_eval=eval_now and not stop)
                if save_now:
                    checkpoint.save(mngr, step, state, data_iter, config, force=True)
                    last_good = step
                if stop:
                    checkpoint.finish(mngr, step, workdir)
                    say(f"SIGTERM: saved step {step} in {workdir}; run the same command to resume")
                    break
            flush(int(state["step"]))
        finally:
            bar.close()
            if hasattr(data_iter, "close"):
                data_iter.close()  # stops Grain's worker processes
            try:
                checkpoint.finish(mngr, last_good, workdir)
            finally:
                mngr.close()
                log.close()
    return {"step": int(state["step"]), **summary}


def _to_global(sharding: jax.sharding.Sharding, local: Batch) -> Batch:
    """This process's share of a batch dict -> global arrays split over the mesh."""
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)
