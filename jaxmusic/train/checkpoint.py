"""Orbax checkpoints of everything a run needs to continue exactly where it stopped.

One checkpoint holds the train state (params, mutable collections, optimizer state,
step), the Grain iterator's position and the config. Evaluation restores only the
encoder's share of it (`restore_encoder`), reading the checkpoint's own metadata,
so it needs neither the optimizer nor the objective's heads nor the training data. Orbax writes each step to a
temporary directory and renames it when complete, so a run killed mid-save leaves
only earlier, complete steps to resume from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxmusic.data import records
from jaxmusic.objectives.base import ENCODER

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
    }
)


class ResumeError(RuntimeError):
    """A workdir's checkpoint cannot be continued with the given config."""


def manager(workdir: str | Path, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    """A CheckpointManager for `workdir/checkpoints` with the config's cadence and keep-N."""
    return ocp.CheckpointManager(
        Path(workdir).absolute() / "checkpoints",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=config.keep_checkpoints,
            save_interval_steps=config.checkpoint_every_steps,
            enable_async_checkpointing=config.async_checkpointing,
        ),
    )


def save(
    mngr: ocp.CheckpointManager,
    step: int,
    state: dict[str, Any],
    data_iter: grain.DatasetIterator,
    config: ml_collections.ConfigDict,
    force: bool = False,
) -> bool:
    """Save (asynchronously where enabled) if `step` is on the cadence or `force`."""
    return mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(data_iter),
            config=ocp.args.JsonSave(config.to_dict()),
        ),
        force=force,
    )


def restore_latest(
    mngr: ocp.CheckpointManager,
    abstract_state: dict[str, Any],
    data_iter: grain.DatasetIterator,
    config: ml_collections.ConfigDict,
) -> dict[str, Any] | None:
    """Restore the newest complete checkpoint into the shardings of `abstract_state`.

    Advances `data_iter` to the saved position. Returns None when there is none.
    """
    step = mngr.latest_step()
    if step is None:
        return None
    if (Path(mngr.directory).parent / "origin.json").is_file():
        raise ResumeError(
            f"{Path(mngr.directory).parent} holds converted encoder weights, not a training run: "
            "embed it, or train in a new --workdir"
        )
    saved = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    _check_compatible(saved, config.to_dict(), step)
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(data_iter),
        ),
    )
    return restored["state"]


def changed_keys(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ between two config dicts (tuples equal to lists)."""
    a, b = _flat(saved), _flat(current)
    return sorted(k for k in a.keys() | b.keys() if _norm(a.get(k)) != _norm(b.get(k)))


def _check_compatible(saved: dict, current: dict, step: int) -> None:
    changed = [k for k in changed_keys(saved, current) if k.split(".")[0] not in RESUMABLE_CHANGES]
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


def restore_encoder(workdir: str | Path) -> tuple[dict[str, Any], int]:
    """The encoder's variables `{collection: tree}` from the newest checkpoint in `workdir`,
    on this machine's first device, whatever topology saved them; and the step.

    Only the leaves under `params/encoder` and `mutable/<collection>/encoder` are
    read (objectives/base.py puts the encoder there); an encoder without BatchNorm
    simply has no mutable collection.
    """
    directory = Path(workdir).absolute() / "checkpoints"
    with _read_only(directory) as mngr:
        step = mngr.latest_step()
    if step is None:
        raise FileNotFoundError(f"no complete checkpoint in {directory}: train first, or pass --random-init")
    path = directory / str(step) / "state"
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with ocp.PyTreeCheckpointer() as ckpt:
        tree = ckpt.metadata(path).item_metadata.tree
        wanted = {"params": {ENCODER: tree["params"][ENCODER]}}
        mutable = {col: {ENCODER: t[ENCODER]} for col, t in tree.get("mutable", {}).items() if ENCODER in t}
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
    variables = {"params": restored["params"][ENCODER]}
    variables.update({col: t[ENCODER] for col, t in restored.get("mutable", {}).items()})
    return jax.device_get(variables), step


def write_encoder_checkpoint(
    workdir: str | Path, config: ml_collections.ConfigDict, encoder_variables: dict[str, Any], origin: str
) -> Path:
    """A checkpoint holding only an encoder (e.g. converted weights), laid out as training
    lays it out, with `config.json` beside it: `embed --workdir` takes it as it takes a
    trained run. `origin` says where the weights came from (in `origin.json`)."""
    workdir = Path(workdir).absolute()
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
                state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict())
            ),
        )
        mngr.wait_until_finished()
    records.write_json_atomic(workdir / "config.json", config.to_dict())
    records.write_json_atomic(workdir / "origin.json", {"origin": origin})
    return workdir


def saved_config(workdir: str | Path) -> dict[str, Any]:
    """The config a workdir's run (or conversion) was made with, as a dict."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{workdir} has no config.json: is it a training workdir?")
    return json.loads(path.read_text())
