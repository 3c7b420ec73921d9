"""Orbax checkpoints of everything a run needs to continue exactly where it stopped.

One checkpoint holds the train state (params, batch statistics, optimizer state,
step), the Grain iterator's position and the config. Orbax writes each step to a
temporary directory and renames it when complete, so a run killed mid-save leaves
only earlier, complete steps to resume from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grain
import ml_collections
import orbax.checkpoint as ocp

# Keys whose change on resume is harmless: how long to run and how often to report.
RESUMABLE_CHANGES = frozenset(
    {
        "total_steps",
        "log_every_steps",
        "checkpoint_every_steps",
        "keep_checkpoints",
        "progress_bar",
        "async_checkpointing",
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


def _check_compatible(saved: dict, current: dict, step: int) -> None:
    changed = sorted(
        key
        for key in _flat(saved).keys() | _flat(current).keys()
        if key.split(".")[0] not in RESUMABLE_CHANGES
        and _norm(_flat(saved).get(key)) != _norm(_flat(current).get(key))
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
