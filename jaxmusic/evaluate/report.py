"""`jaxmusic probe`: a linear probe per task on one embedding folder, as tables and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jaxmusic.data.records import write_json_atomic
from jaxmusic.evaluate.embed import EMBEDDINGS_META, read_split
from jaxmusic.evaluate.probe import ProbeConfig, Split, train_probe


def probe_all(
    emb_dir: str | Path, tasks: list[str] | None = None, config: ProbeConfig | None = None
) -> dict[str, dict[str, Any]]:
    """Train and test one probe per task; {task: {metric, value, metrics, ...}}."""
    meta = json.loads((Path(emb_dir) / EMBEDDINGS_META).read_text())
    known = meta["tasks"]
    tasks = tasks or list(known)
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; {emb_dir} has {list(known)}")
    splits = {s: read_split(emb_dir, s) for s in ("train", "valid", "test")}
    results = {}
    for task in tasks:
        data = {s: Split.from_dict(d, f"label_{task}") for s, d in splits.items()}
        r = train_probe(known[task], data["train"], data["valid"], data["test"], config or ProbeConfig())
        results[task] = {
            "metric": r.primary_metric,
            "value": r.metrics[r.primary_metric],
            "metrics": r.metrics,
            "valid_metrics": r.valid_metrics,
            "best_epoch": r.best_epoch,
            "epochs_run": r.epochs_run,
        }
    return results


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats with four decimals."""
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def run_probes(
    emb_dir: str | Path, out: str | Path, tasks: list[str] | None = None, seed: int = 0
) -> dict[str, Any]:
    """Probe every task, print the table, write `out/results.json` and `out/results.md`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = probe_all(emb_dir, tasks, ProbeConfig(seed=seed))
    table = markdown_table(
        ["task", "metric", "value", "best epoch"],
        [[t, r["metric"], r["value"], r["best_epoch"]] for t, r in results.items()],
    )
    print(table)
    write_json_atomic(out / "results.json", {"embeddings": str(emb_dir), "tasks": results})
    (out / "results.md").write_text(table + "\n")
    return results
