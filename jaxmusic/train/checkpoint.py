"""Orbax checkpoints of everything a run needs to continue exactly where it stopped.

One checkpoint holds the train state (params, mutable collections, optimizer state,
step), the Grain iterator's position and the config. Evaluation restores only the
encoder's share of it (`restore_encoder`), reading the checkpoint's own metadata,
so it needs neither the optimizer nor the objective's heads nor the training data. Orbax writes each step to a
temporary directory and renames it when complete, so a run killed mid-save leaves
only earlier, complete steps to resume from.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jaxmusic.data import records
from jaxmusic.objectives.base import ENCODER
from jaxmusic.paths import as_path

# Keys whose change on resume is harmless: how long to run, how often to report, and
# how to evaluate (evaluation reads the state, never changes it).
RESUMABLE_CHANGES = frozenset(
    {
        "total_steps",
        "log_every_steps",
        "checkpoint_every_steps",
        "keep_checkpoints",
        "progress_bar",
        "async_checkpointing",
        "eval",
        # The layout of devices changes no number the run computes (the global batch and
        # its order do not depend on it): a run may resume on another mesh.
        "mesh_shape",
    }
)
# Keys that may change on resume, as the remedy for a divergence, and are then recorded
# in WORKDIR/resumes.jsonl: the state (Adam's moments included) does not depend on them.
RECORDED_CHANGES = frozenset({"optimizer.learning_rate"})


class ResumeError(RuntimeError):
    """A workdir's checkpoint cannot be continued with the given config."""


def checkpoints_dir(workdir: str | Path) -> Path:
    """Where a workdir's checkpoints live."""
    return as_path(workdir) / "checkpoints"


def manager(workdir: str | Path, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    """A CheckpointManager for `workdir/checkpoints` keeping the newest `keep_checkpoints`.

    The trainer decides when to save (cadence, last step, preemption) and always saves
    with `force`, so the save-decision policy only states the cadence for Orbax's own
    bookkeeping.
    """
    return ocp.CheckpointManager(
        checkpoints_dir(workdir),
        options=ocp.CheckpointManagerOptions(
            preservation_policy=policies.LatestN(config.keep_checkpoints),
            save_decision_policy=policies.FixedIntervalPolicy(config.checkpoint_every_steps),
            enable_async_checkpointing=config.async_checkpointing,
            # Temporary folders of saves that were killed or failed are removed at start.
            cleanup_tmp_directories=True,
        ),
    )


@jax.jit
def _fingerprint(tree: Any) -> tuple[dict[str, jax.Array], jax.Array]:
    # The sum of every leaf's bits as unsigned integers, mod 2**32: exact and independent of
    # reduction order and sharding, and any flipped bit changes it. Also whether every
    # floating-point value is finite.
    def bits(x: jax.Array) -> jax.Array:
        width = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}[x.dtype.itemsize]
        x = x.astype(jnp.uint8) if x.dtype == jnp.bool_ else x
        return jnp.sum(jax.lax.bitcast_convert_type(x, width).astype(jnp.uint32), dtype=jnp.uint32)

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    sums = {jax.tree_util.keystr(path): bits(x) for path, x in leaves}
    finite = [jnp.all(jnp.isfinite(x)) for _, x in leaves if jnp.issubdtype(x.dtype, jnp.floating)]
    return sums, jnp.all(jnp.stack(finite)) if finite else jnp.bool_(True)


def _host(x: jax.Array) -> np.ndarray:
    # Outputs of _fingerprint are replicated: any local copy is the value, on any process.
    return np.asarray(x.addressable_shards[0].data) if isinstance(x, jax.Array) else np.asarray(x)


def fingerprint(tree: Any) -> tuple[dict[str, int], bool]:
    """Per-leaf checksums `{path: uint32}` of a state tree and whether it is all finite."""
    sums, finite = _fingerprint(tree)
    return {k: int(_host(v)) for k, v in sums.items()}, bool(_host(finite))


def save(
    mngr: ocp.CheckpointManager,
    step: int,
    state: dict[str, Any],
    data_iter: grain.DatasetIterator,
    config: ml_collections.ConfigDict,
    force: bool = False,
) -> bool:
    """Save (asynchronously where enabled) if `step` is on the cadence or `force`.

    Refuses a state holding non-finite values, so no checkpoint is ever one that
    cannot be continued; the checksums saved beside it let a restore notice damage.
    """
    sums, finite = fingerprint(state)
    if not finite:
        raise NonFiniteState(f"the state at step {step} holds non-finite values: not saved")
    try:
        return mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(data_iter),
                config=ocp.args.JsonSave(config.to_dict()),
                integrity=ocp.args.JsonSave({"checksums": sums}),
            ),
            force=force,
        )
    except Exception as e:  # an earlier asynchronous save's failure surfaces here too
        raise _write_failed(step, as_path(mngr.directory), e) from None


class CheckpointWriteError(RuntimeError):
    """A save that failed (a full disk, a lost mount); older checkpoints are intact."""


def _write_failed(step: int | None, directory: Path, e: BaseException) -> CheckpointWriteError:
    return CheckpointWriteError(
        f"saving checkpoint {'' if step is None else f'step {step} '}in {directory} failed ({_reason(e)}); "
        "older checkpoints are intact: free space (or fix the folder) and run the same command to resume"
    )


def finish(mngr: ocp.CheckpointManager, step: int | None, workdir: str | Path) -> None:
    """Wait for asynchronous saves; a failed one is one `CheckpointWriteError` line."""
    try:
        mngr.wait_until_finished()
    except Exception as e:
        raise _write_failed(step, checkpoints_dir(workdir), e) from None


class NonFiniteState(RuntimeError):
    """A train state with NaN or infinite values, which is never saved or resumed."""


def _all_agree(ok: bool) -> bool:
    # Every process must pick the same step, even if only one of them failed to read it.
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def _verify(restored: dict[str, Any], step: int, tree: Any) -> None:
    """Raise if `tree` (restored from `step`) is not what was saved, or not finite."""
    sums, finite = fingerprint(tree)
    saved = restored.get("integrity")
    if saved is not None:
        wrong = [k for k, v in sums.items() if saved["checksums"].get(k, v) != v]
        if wrong:
            raise DamagedCheckpoint(f"{len(wrong)} arrays differ from what was saved (e.g. {wrong[0]})")
    if not finite:
        raise DamagedCheckpoint("it holds non-finite values")


@dataclasses.dataclass(frozen=True)
class Restored:
    """What a resume starts from: the state, its step, and the recorded config changes."""

    state: dict[str, Any]
    step: int
    changes: dict[str, tuple[Any, Any]]  # key -> (saved value, new value), see RECORDED_CHANGES


class DamagedCheckpoint(RuntimeError):
    """A checkpoint that cannot be read back as it was written."""


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _quarantine(directory: Path, step: int) -> Path:
    """Move a damaged step out of Orbax's sight (kept, not deleted), so the run can save it anew."""
    aside = directory.parent / "checkpoints.damaged"
    aside.mkdir(exist_ok=True)
    target = aside / str(step)
    n = 1
    while target.exists():
        target, n = aside / f"{step}.{n}", n + 1
    (directory / str(step)).rename(target)
    return target


def _steps(directory: Path) -> list[int]:
    """Step directories on disk, newest first, complete or not: each is tried in turn."""
    if not directory.is_dir():
        return []
    return sorted((int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)


def restore_latest(
    workdir: str | Path,
    abstract_state: dict[str, Any],
    data_iter: grain.DatasetIterator,
    config: ml_collections.ConfigDict,
    warn: Callable[[str], None] = print,
) -> Restored | None:
    """Restore the newest restorable checkpoint into the shardings of `abstract_state`.

    A newest step that cannot be read back whole (missing or truncated files, no
    commit marker, checksums that do not match, non-finite values) is named in a
    warning, moved to `checkpoints.damaged/` and the next older one is tried. Advances
    `data_iter` to the saved position. Returns None when no checkpoint restores.
    """
    directory = checkpoints_dir(workdir)
    if (directory.parent / "origin.json").is_file() and _steps(directory):
        raise ResumeError(
            f"{directory.parent} holds converted encoder weights, not a training run: "
            "embed it, or train in a new --workdir"
        )
    initial = data_iter.get_state()
    for step in _steps(directory):
        state, error, changes = None, None, {}
        try:
            if not (directory / str(step) / "commit_success.txt").is_file():
                raise DamagedCheckpoint("no commit marker: the save never finished")
            with _read_only(directory) as mngr:
                saved = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
                changes = _check_compatible(saved, config.to_dict(), step)
                position = _data_position(directory / str(step), step)
                items = {"state": ocp.args.StandardRestore(abstract_state)}
                if position is None:
                    items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
                if (directory / str(step) / "integrity").is_dir():
                    items["integrity"] = ocp.args.JsonRestore()
                restored = mngr.restore(step, args=ocp.args.Composite(**items))
                if position is not None:
                    data_iter.set_state(position)
            _verify(restored, step, restored["state"])
            state = restored["state"]
        except ResumeError:
            raise
        except Exception as e:
            error = _reason(e)
        if _all_agree(error is None):
            return Restored(state, step, changes)
        if jax.process_index() == 0:
            where = _quarantine(directory, step)
            warn(
                f"checkpoint step {step} in {directory} is damaged ({error or 'on another process'}): moved to {where}; trying the next older one"
            )
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"quarantined {step}")
    data_iter.set_state(initial)
    return None


def _data_position(step_dir: Path, step: int) -> dict[str, Any] | None:
    """The data iterator's state for this process when the step was saved by a different
    number of processes; None when the counts match (Grain restores its own files).

    Each process's iterator counts the batches it has taken, one per step whatever the
    number of processes, and the global batch does not depend on the process count
    (data/pipeline.py), so any process's saved position is every process's position
    now. Iterators with worker processes keep per-worker state that does not carry
    over: such a run is refused.
    """
    names = sorted(p.name for p in (step_dir / "data").glob("process_*-of-*.json"))
    if not names:
        raise DamagedCheckpoint("the data iterator's state is missing")
    saved_count = int(names[0].split("-of-")[1].removesuffix(".json"))
    if saved_count == jax.process_count():
        return None
    if len(names) != saved_count:
        raise DamagedCheckpoint(f"{len(names)} of {saved_count} processes' data iterator states are present")
    state = json.loads((step_dir / "data" / names[0]).read_text())
    if set(state) != {"next_index"}:
        raise ResumeError(
            f"step {step} was saved by {saved_count} processes whose data iterators had worker processes: "
            f"resume it with {saved_count} processes (or train in a new --workdir)"
        )
    return state


def changed_keys(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ between two config dicts (tuples equal to lists)."""
    a, b = _flat(saved), _flat(current)
    return sorted(k for k in a.keys() | b.keys() if _norm(a.get(k)) != _norm(b.get(k)))


def _check_compatible(saved: dict, current: dict, step: int) -> dict[str, tuple[Any, Any]]:
    """Refuse a config that would not continue the saved run; return the recorded changes."""
    all_changed = changed_keys(saved, current)
    changed = [
        k for k in all_changed if k.split(".")[0] not in RESUMABLE_CHANGES and k not in RECORDED_CHANGES
    ]
    opt = saved.get("optimizer", {})
    if (
        opt.get("schedule") == "cosine"
        and not opt.get("decay_steps")
        and saved["total_steps"] != current["total_steps"]
    ):
        # The cosine runs over total_steps: a longer run would bend the schedule mid-way.
        raise ResumeError(
            f"the workdir's run (step {step}) decays its learning rate by a cosine over total_steps="
            f"{saved['total_steps']}: to train longer, set optimizer.decay_steps in the first run, "
            "or use a new --workdir"
        )
    if changed:
        raise ResumeError(
            f"the workdir's checkpoint (step {step}) was made with a different config "
            f"({', '.join(changed)}): use a new --workdir, or the same config"
        )
    a, b = _flat(saved), _flat(current)
    return {k: (a.get(k), b.get(k)) for k in all_changed if k in RECORDED_CHANGES}


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _norm(value: Any) -> Any:
    # JSON turns tuples into lists; compare them as equal.
    return list(value) if isinstance(value, tuple) else value


def _read_only(directory: Path) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))


def restore_encoder(workdir: str | Path, warn: Callable[[str], None] = print) -> tuple[dict[str, Any], int]:
    """The encoder's variables `{collection: tree}` from the newest restorable checkpoint in
    `workdir`, on this machine's first device, whatever topology saved them; and the step.

    Only the leaves under `params/encoder` and `mutable/<collection>/encoder` are
    read (objectives/base.py puts the encoder there); an encoder without BatchNorm
    simply has no mutable collection. A damaged newest step is named in a warning and
    skipped (left where it is: evaluation never changes a workdir).
    """
    return _restore_newest(workdir, warn, encoder_only=True)


def restore_variables(workdir: str | Path, warn: Callable[[str], None] = print) -> tuple[dict[str, Any], int]:
    """The whole model's variables `{"params": ..., **mutable}` (heads and text tower
    included, no optimizer state) from the newest restorable checkpoint, on the first
    device; and the step. What language evaluation needs; damaged steps are skipped as
    in `restore_encoder`."""
    return _restore_newest(workdir, warn, encoder_only=False)


def _restore_newest(
    workdir: str | Path, warn: Callable[[str], None], encoder_only: bool
) -> tuple[dict[str, Any], int]:
    directory = checkpoints_dir(workdir)
    steps = _steps(directory)
    for step in steps:
        try:
            return _restore_model_step(directory, step, encoder_only), step
        except Exception as e:
            warn(
                f"checkpoint step {step} in {directory} is damaged ({_reason(e)}): trying the next older one"
            )
    raise FileNotFoundError(
        f"no restorable checkpoint in {directory}"
        + (f" (tried steps {', '.join(map(str, steps))})" if steps else "")
        + ": train first, or pass --random-init"
    )


def _restore_model_step(directory: Path, step: int, encoder_only: bool) -> dict[str, Any]:
    if not (directory / str(step) / "commit_success.txt").is_file():
        raise DamagedCheckpoint("no commit marker: the save never finished")
    path = directory / str(step) / "state"
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    part = (lambda t: {ENCODER: t[ENCODER]}) if encoder_only else (lambda t: t)
    with ocp.PyTreeCheckpointer() as ckpt:
        tree = ckpt.metadata(path).item_metadata.tree
        wanted = {"params": part(tree["params"])}
        mutable = {
            col: part(t) for col, t in tree.get("mutable", {}).items() if ENCODER in t or not encoder_only
        }
        if mutable:
            wanted["mutable"] = mutable
        target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), wanted)
        restored = ckpt.restore(
            path,
            args=ocp.args.PyTreeRestore(
                target,
                restore_args=jax.tree.map(lambda t: ocp.ArrayRestoreArgs(sharding=t.sharding), target),
                partial_restore=True,
            ),
        )
    integrity = directory / str(step) / "integrity"
    saved = None
    if integrity.is_dir():
        with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as ckpt:
            saved = ckpt.restore(integrity)
    _verify({"integrity": saved}, step, restored)
    unwrap = (lambda t: t[ENCODER]) if encoder_only else (lambda t: t)
    variables = {"params": unwrap(restored["params"])}
    variables.update({col: unwrap(t) for col, t in restored.get("mutable", {}).items()})
    return jax.device_get(variables)


def write_encoder_checkpoint(
    workdir: str | Path, config: ml_collections.ConfigDict, encoder_variables: dict[str, Any], origin: str
) -> Path:
    """A checkpoint holding only an encoder (e.g. converted weights), laid out as training
    lays it out, with `config.json` beside it: `embed --workdir` takes it as it takes a
    trained run. `origin` says where the weights came from (in `origin.json`)."""
    workdir = as_path(workdir)
    if (workdir / "checkpoints").exists():
        raise FileExistsError(f"{workdir} already holds checkpoints: choose an empty --out")
    state = {
        "params": {ENCODER: encoder_variables["params"]},
        "mutable": {col: {ENCODER: t} for col, t in encoder_variables.items() if col != "params"},
        "step": np.zeros((), np.int32),
    }
    state = jax.tree.map(np.asarray, state)
    with ocp.CheckpointManager(workdir / "checkpoints") as mngr:
        mngr.save(
            0,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                config=ocp.args.JsonSave(config.to_dict()),
                integrity=ocp.args.JsonSave({"checksums": fingerprint(state)[0]}),
            ),
        )
        mngr.wait_until_finished()
    records.write_json_atomic(workdir / "config.json", config.to_dict())
    records.write_json_atomic(workdir / "origin.json", {"origin": origin})
    return workdir


def saved_config(workdir: str | Path) -> dict[str, Any]:
    """The config a workdir's run (or conversion) was made with, as a dict."""
    path = as_path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{workdir} has no config.json: is it a training workdir?")
    return json.loads(path.read_text())
