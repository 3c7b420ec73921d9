"""The training loop: one jit-compiled step over a device mesh, resumable exactly.

Sections follow the order things happen: checks, mesh, input, model and optimizer,
shardings, step, checkpoint, loop. The train state is a plain dict
{params, batch_stats, opt_state, step}; randomness for step s is fold_in(seed, s), so a
resumed run draws what an uninterrupted one would have drawn.
"""

from __future__ import annotations

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

from jaxmusic.augment import AugmentSpec, augment_batch
from jaxmusic.config import ConfigError, validate
from jaxmusic.data import records, subsets
from jaxmusic.data.pipeline import train_dataset
from jaxmusic.data.sources import read_manifest
from jaxmusic.models.build import input_hop
from jaxmusic.objectives.contrastive import ContrastiveObjective
from jaxmusic.train import checkpoint
from jaxmusic.train.mesh import batch_sharding, check_batch, make_mesh, replicated
from jaxmusic.train.metrics_log import MetricsLog
from jaxmusic.train.state import abstract_state, state_factory


def make_train_step(
    objective: ContrastiveObjective,
    tx: optax.GradientTransformation,
    spec: AugmentSpec | None,
    step_key: jax.Array,
) -> Callable[[dict[str, Any], jax.Array], tuple[dict[str, Any], dict[str, jax.Array]]]:
    """`step(state, views_int16) -> (state, metrics)`: augment on device, loss, gradient, update.

    `spec=None` skips augmentation (for measuring what the chain costs).
    """

    def train_step(state: dict[str, Any], views: jax.Array) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        key = jax.random.fold_in(step_key, state["step"])
        aug_key, loss_key = jax.random.split(key)
        audio = views.astype(jnp.float32) / 32768.0
        if spec is not None:
            audio = augment_batch(audio, aug_key, spec)
        grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
        (_loss, (batch_stats, metrics)), grads = grad_fn(
            state["params"], state["batch_stats"], audio, loss_key
        )
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new_state = {
            "params": optax.apply_updates(state["params"], updates),
            "batch_stats": batch_stats,
            "opt_state": opt_state,
            "step": state["step"] + 1,
        }
        return new_state, {**metrics, "grad_norm": optax.tree.norm(grads)}

    return train_step


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite."""


def check_config(config: ml_collections.ConfigDict) -> tuple[AugmentSpec, dict | None]:
    """Every check that can fail on bad input, before anything is compiled.

    Returns the augmentation spec and the limited-data budget's selection (None for
    the full split).
    """
    validate(config)
    hop = input_hop(config.model)
    if config.data.crop_samples % hop:
        raise ConfigError(
            f"data.crop_samples={config.data.crop_samples} must be a multiple of {hop} "
            f"for this encoder (e.g. {hop * max(1, config.data.crop_samples // hop)})"
        )
    if config.data.num_views < 2 and config.objective.name == "simclr":
        raise ConfigError("data.num_views must be >= 2 for the simclr objective")
    for key in ("total_steps", "log_every_steps", "checkpoint_every_steps", "batch_size"):
        if config[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {config[key]}")
    if not config.data.dir:
        raise ConfigError("data.dir is empty: prepare a dataset first (see `jaxmusic prepare --help`)")
    manifest = read_manifest(config.data.dir)
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
    return spec, budget


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
    workdir = Path(workdir)
    # --- checks (before any compilation) ---
    spec, budget = check_config(config)
    mesh = make_mesh(tuple(config.mesh_shape))
    local_batch = check_batch(config.batch_size, mesh)

    # --- input ---
    dataset = train_dataset(
        config.data.dir,
        config.data.train_split,
        batch_size=local_batch,
        crop_samples=config.data.crop_samples,
        num_views=config.data.num_views,
        seed=config.data.shuffle_seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        worker_count=config.data.worker_count,
        worker_buffer_size=config.data.worker_buffer_size,
        read_threads=config.data.read_threads,
        indices=None if budget is None else budget["indices"],
    )
    data_iter = iter(dataset)
    data_sharding = batch_sharding(mesh)

    # --- model, optimizer, state ---
    objective, tx, init_state = state_factory(config)
    init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))

    # --- sharding: state replicated, batch split over 'data' ---
    state_sharding = jax.tree.map(lambda _: replicated(mesh), jax.eval_shape(init_state, init_key))
    state = jax.jit(init_state, out_shardings=state_sharding)(init_key)

    # --- step ---
    train_step = make_train_step(objective, tx, spec, step_key)
    step_fn = jax.jit(
        train_step,
        in_shardings=(state_sharding, data_sharding),
        out_shardings=(state_sharding, replicated(mesh)),
        donate_argnums=0,
    )

    # --- checkpoint: resume if the workdir has one ---
    workdir.mkdir(parents=True, exist_ok=True)
    mngr = checkpoint.manager(workdir, config)
    target = abstract_state(config, replicated(mesh))
    restored = checkpoint.restore_latest(mngr, target, data_iter, config)
    if restored is not None:
        state = restored
    start_step = int(state["step"])
    if jax.process_index() == 0:
        records.write_json_atomic(workdir / "config.json", config.to_dict())
        if budget is not None:
            records.write_json_atomic(workdir / "budget.json", budget)

    # --- loop ---
    log = MetricsLog(workdir)
    pending: list[dict[str, jax.Array]] = []
    wait = 0.0
    interval_start = time.perf_counter()
    last_good = mngr.latest_step()
    bar = tqdm(
        total=config.total_steps,
        initial=start_step,
        unit="step",
        desc="train",
        disable=not config.progress_bar or jax.process_index() != 0,
    )
    summary: dict[str, float] = {}

    def flush(step: int) -> None:
        # Pulling metrics to the host syncs with the device; do it once per interval.
        nonlocal pending, wait, interval_start
        if not pending:
            return
        values = jax.device_get(pending)
        bar.update(1)  # the interval's last step, now finished
        losses = np.asarray([v["loss"] for v in values])
        if not np.all(np.isfinite(losses)):
            bad = step - len(values) + 1 + int(np.argmin(np.isfinite(losses)))
            raise TrainingDiverged(
                f"loss is {losses[~np.isfinite(losses)][0]} at step {bad}; the last good checkpoint "
                f"is step {last_good} in {workdir}: lower optimizer.learning_rate and resume from it"
            )
        elapsed = time.perf_counter() - interval_start
        summary.clear()
        summary.update({k: float(np.mean([v[k] for v in values])) for k in values[0]})
        summary.update(
            steps_per_s=len(values) / elapsed,
            data_wait_s=wait,
            data_wait_frac=wait / elapsed,
        )
        log.write(step, summary)
        bar.set_postfix(loss=f"{summary['loss']:.4f}", data=f"{100 * wait / elapsed:.0f}%")
        pending, wait, interval_start = [], 0.0, time.perf_counter()

    with _Preempted() as preempt:
        try:
            for step in range(start_step + 1, config.total_steps + 1):
                t0 = time.perf_counter()
                batch = next(data_iter)
                views = jax.make_array_from_process_local_data(data_sharding, batch["views"])
                wait += time.perf_counter() - t0
                state, metrics = step_fn(state, views)
                if pending:
                    # Keep one step in flight, no more: the device stays busy while the
                    # host fetches the next batch, and the progress bar counts finished
                    # steps rather than dispatched ones.
                    jax.block_until_ready(pending[-1])
                    bar.update(1)
                pending.append(metrics)
                save_now = (
                    step % config.checkpoint_every_steps == 0
                    or step == config.total_steps
                    or preempt.requested
                )
                # Metrics are checked before every save, so a non-finite loss is never
                # written into a checkpoint.
                if step % config.log_every_steps == 0 or save_now:
                    flush(step)
                if save_now:
                    checkpoint.save(mngr, step, state, data_iter, config, force=True)
                    last_good = step
                if preempt.requested:
                    bar.write(f"SIGTERM: saved step {step} in {workdir}; run the same command to resume")
                    break
            flush(int(state["step"]))
        finally:
            bar.close()
            if hasattr(data_iter, "close"):
                data_iter.close()  # stops Grain's worker processes
            mngr.wait_until_finished()
            mngr.close()
            log.close()
    return {"step": int(state["step"]), **summary}
