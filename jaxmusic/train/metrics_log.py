"""Training metrics as JSON lines and TensorBoard event files, written by process 0."""

from __future__ import annotations

import json
from pathlib import Path

import jax

from jaxmusic.paths import append_text, as_path, is_remote


class MetricsLog:
    """Appends one JSON object per logged step to `workdir/metrics.jsonl` and TensorBoard.

    Only process 0 writes, so a multi-host run produces one log. Appending keeps the
    lines of a run that was interrupted and resumed; readers take the last line for
    a step that appears twice.
    """

    def __init__(self, workdir: str | Path):
        self.active = jax.process_index() == 0
        self.path = as_path(workdir) / "metrics.jsonl"
        self._file = None
        self._tb = None
        if self.active:
            from tensorboardX import SummaryWriter  # TF-free writer

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = None if is_remote(self.path) else self.path.open("a")
            self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        """Record scalar metrics for `step`."""
        if not self.active:
            return
        line = json.dumps({"step": step, **metrics}) + "\n"
        if self._file is None:
            append_text(self.path, line)
        else:
            self._file.write(line)
            self._file.flush()
        for name, value in metrics.items():
            self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        """Flush and close the files."""
        if self.active:
            if self._file is not None:
                self._file.close()
            self._tb.close()


def read_metrics(workdir: str | Path) -> dict[int, dict[str, float]]:
    """Metrics by step from `metrics.jsonl`, the last line winning for a repeated step."""
    out: dict[int, dict[str, float]] = {}
    path = as_path(workdir) / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                out[row.pop("step")] = row
    return out
