"""Results as tables and files: the `probe` command's, and the bench's report.

Bench files (OUT/): `results.json` (every cell: embedder, dataset, task, protocol,
variant, each metric's value with its 95 % interval, test-set size, chance level,
seed or episode spread, probe setting, predictions file), `results.csv` (one row per
cell and metric), `report.md` (a table per protocol and task: embedders as rows,
variants as columns, "value [low, high]"), and the plots of evaluate/plots.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from jaxmusic.config import ConfigError
from jaxmusic.data.records import write_json_atomic
from jaxmusic.evaluate import plots
from jaxmusic.evaluate.embed import EMBEDDINGS_META, EmbeddingsError, read_split
from jaxmusic.evaluate.probe import ProbeConfig, Split, probe


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats with four decimals."""
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ `jaxmusic probe`


def probe_all(
    emb_dir: str | Path, tasks: list[str] | None = None, config: ProbeConfig | None = None
) -> dict[str, dict[str, Any]]:
    """One probe (grid) per task of an `embed` folder; {task: {metric, value, metrics, ...}}."""
    meta_path = Path(emb_dir) / EMBEDDINGS_META
    if not meta_path.is_file():
        raise EmbeddingsError(
            f"{emb_dir} has no {EMBEDDINGS_META}: write it with `jaxmusic embed --out {emb_dir}`"
        )
    try:
        meta = json.loads(meta_path.read_text())
        known = meta["tasks"]
    except (ValueError, KeyError) as e:
        raise EmbeddingsError(f"{meta_path} is damaged ({e}): re-run `jaxmusic embed`") from None
    if not known:
        raise ConfigError(f"{emb_dir} holds embeddings of a dataset without labels: nothing to probe")
    tasks = tasks or list(known)
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown}; {emb_dir} has {list(known)}")
    splits = {s: read_split(emb_dir, s) for s in ("train", "valid", "test")}
    for task in tasks:
        for s, d in splits.items():
            if f"label_{task}" not in d:
                raise EmbeddingsError(
                    f"{Path(emb_dir) / s}.npz has no labels of task '{task}': re-run `jaxmusic embed`"
                )
    results = {}
    for task in tasks:
        data = {
            s: Split(d["window_embeddings"], d["window_clip"], d[f"label_{task}"]) for s, d in splits.items()
        }
        r = probe(known[task], data["train"], data["valid"], data["test"], config or ProbeConfig())
        results[task] = {
            "metric": r.primary_metric,
            "value": r.test_metrics.get(r.primary_metric, math.nan),
            "metrics": r.test_metrics,
            "valid_metrics": r.valid_metrics,
            "n_test": int(r.test_labels.shape[0]),
            "setting": r.setting,
            "best_epoch": r.best_epoch,
            "epochs_run": r.epochs,
        }
    return results


def run_probes(
    emb_dir: str | Path, out: str | Path, tasks: list[str] | None = None, config: ProbeConfig | None = None
) -> dict[str, Any]:
    """Probe every task, print the table, write `out/results.json` and `out/results.md`."""
    out = Path(out)
    results = probe_all(emb_dir, tasks, config)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(
        ["task", "metric", "value", "test clips", "learning rate", "weight decay", "best epoch"],
        [[t, r["metric"], r["value"], r["n_test"], r["setting"]["learning_rate"], r["setting"]["weight_decay"],
          r["best_epoch"]] for t, r in results.items()],
    )  # fmt: skip
    print(table)
    write_json_atomic(out / "results.json", {"embeddings": str(emb_dir), "tasks": results})
    (out / "results.md").write_text(table + "\n")
    return results


# ------------------------------------------------------------------ the bench report


def variant_label(variant: dict[str, Any]) -> str:
    """A short column name for a protocol variant ("N=5 K=1", "SNR 10 dB", "1%")."""
    if not variant:
        return "value"
    if "k_shots" in variant:
        n = variant.get("n_tags", variant.get("n_ways"))
        return f"N={n} K={variant['k_shots']}"
    if "snr_db" in variant:
        snr = "clean" if math.isinf(variant["snr_db"]) else f"SNR {variant['snr_db']:g} dB"
        return snr if variant["gain_db"] == 0 else f"gain {variant['gain_db']:g} dB"
    if "fraction" in variant:
        return f"{100 * variant['fraction']:g}% labels"
    if "minutes" in variant:
        return f"{variant['minutes']:g} min ({variant['budget']})"
    return " ".join(f"{k}={v}" for k, v in variant.items())


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def figure_text(cell: dict[str, Any], metric: str | None = None) -> str:
    """ "value [low, high]" of a cell's metric, or why it has none."""
    if "skipped" in cell:
        return "n/a"
    f = cell["metrics"].get(metric or cell["metric"])
    if f is None:
        return "-"
    return f"{_fmt(f['value'])} [{_fmt(f['ci_low'])}, {_fmt(f['ci_high'])}]"


def csv_text(cells: list[dict[str, Any]]) -> str:
    """One row per cell and metric."""
    buf = io.StringIO()
    fields = ["embedder", "dataset", "task", "protocol", "variant", "metric", "value", "ci_low", "ci_high",
              "n_test", "chance", "seeds_mean", "seeds_std", "predictions"]  # fmt: skip
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for c in cells:
        for metric, f in c.get("metrics", {}).items():
            seeds = c.get("seeds", {}) if metric == c["metric"] else {}
            w.writerow({
                "embedder": c["embedder"], "dataset": c["dataset"], "task": c["task"], "protocol": c["protocol"],
                "variant": variant_label(c["variant"]), "metric": metric, "value": f["value"], "ci_low": f["ci_low"],
                "ci_high": f["ci_high"], "n_test": c["n_test"], "chance": c["chance"].get(metric),
                "seeds_mean": seeds.get("mean", ""), "seeds_std": seeds.get("std", ""),
                "predictions": c.get("predictions", ""),
            })  # fmt: skip
    return buf.getvalue()


def markdown_report(results: dict[str, Any]) -> str:
    """The report: per protocol and task, embedders x variants of the headline metric;
    then every metric of the full-data probes with test size and chance."""
    cells = results["cells"]
    lines = ["# Benchmark report", ""]
    lines.append(
        f"{len(cells)} cells from {results['jobs']} jobs; every figure is the test value with its 95 % "
        "bootstrap interval over test clips, [low, high]; few-shot figures are means over episodes."
    )
    if results["failed"]:
        lines += ["", "**Failed jobs** (re-run the bench to retry them):", ""]
        lines += [f"- `{job}`: {err}" for job, err in results["failed"].items()]
    by_protocol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        by_protocol[c["protocol"]].append(c)
    for protocol, group in by_protocol.items():
        lines += ["", f"## {protocol}"]
        tasks: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for c in group:
            tasks[(c["dataset"], c["task"])].append(c)
        for (dataset, task), tc in tasks.items():
            columns = list(dict.fromkeys(variant_label(c["variant"]) for c in tc))
            rows = defaultdict(dict)
            for c in tc:
                # Limited-data budgets are one pre-trained encoder's columns, not rows.
                rows[c["embedder"].partition("@")[0]][variant_label(c["variant"])] = figure_text(c)
            sizes = {c.get("n_test") for c in tc if "n_test" in c}
            chances = {_fmt(c["chance"].get(c["metric"])) for c in tc if "chance" in c}
            about = (
                f"test clips {sizes.pop()}; chance {chances.pop()}"
                if len(sizes) == 1 and len(chances) == 1
                else "test clips and chance vary by column: see results.csv"
            )
            lines += ["", f"### {dataset} / {task}: {tc[0]['metric']} ({about})", ""]
            lines.append(
                markdown_table(
                    ["embedder", *columns], [[e, *(r.get(k, "") for k in columns)] for e, r in rows.items()]
                )
            )
    full = [c for c in cells if c["protocol"] in ("full", "knn", "centroid", "language") and "metrics" in c]
    if full:
        lines += ["", "## Every metric (full data, training-free probes, language)", ""]
        rows = []
        for c in full:
            spread = c.get("seeds")
            seeds = f"{_fmt(spread['mean'])} ± {_fmt(spread['std'])}" if spread else ""
            setting = c.get("probe", {}).get("setting", {})
            chosen = (
                f"lr {setting['learning_rate']:g}, wd {setting['weight_decay']:g}"
                if setting
                else c["protocol"]
            )
            direction = c.get("variant", {}).get("direction")  # retrieval: text-to-audio or the reverse
            task = f"{c['task']} ({direction})" if direction else c["task"]
            for metric in c["metrics"]:
                rows.append([c["dataset"], task, c["embedder"], c["protocol"], metric, figure_text(c, metric),
                             _fmt(c["chance"].get(metric)), c["n_test"], seeds if metric == c["metric"] else "", chosen])  # fmt: skip
        lines.append(markdown_table(
            ["dataset", "task", "embedder", "probe", "metric", "value [95% CI]", "chance", "test clips",
             "seeds mean ± std", "setting"], rows))  # fmt: skip
    return "\n".join(lines) + "\n"


def write_bench_report(results: dict[str, Any], out: Path) -> None:
    """results.json, results.csv, report.md and the plots, each written whole."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", results)
    for name, text in (("results.csv", csv_text(results["cells"])), ("report.md", markdown_report(results))):
        tmp = out / f"{name}.partial"
        tmp.write_text(text)
        tmp.replace(out / name)
    plots.write_all(results["cells"], out)
