"""The bench report's figures (matplotlib, written as PNG without a display).

One figure per curve protocol, one panel per (dataset, task), the task's headline
metric on the y axis with its 95 % interval as a band:
- `limited_data.png`: score against pre-training minutes (log axis), with every
  full-protocol embedder of the same task (random init, handcrafted, ...) as a flat
  reference line;
- `few_shot.png`: score against K clips per tag, one line per (embedder, N);
- `noise.png`: score against SNR in dB (clean audio plotted at the right, marked inf),
  one line per embedder; gain-only variants are left to the tables.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: a bench runs on machines without a display
import matplotlib.pyplot as plt

Cell = dict[str, Any]


def _figure(cell: Cell) -> tuple[float, float, float]:
    f = cell.get("metrics", {}).get(cell.get("metric"), {})
    return f.get("value", math.nan), f.get("ci_low", math.nan), f.get("ci_high", math.nan)


def _panels(cells: list[Cell]) -> dict[tuple[str, str], list[Cell]]:
    out: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in cells:
        out[(c["dataset"], c["task"])].append(c)
    return dict(out)


def _line(ax: Any, xs: list[float], cells: list[Cell], label: str) -> None:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    x = [xs[i] for i in order]
    v, lo, hi = zip(*(_figure(cells[i]) for i in order), strict=True)
    (handle,) = ax.plot(x, v, marker="o", label=label)
    ax.fill_between(x, lo, hi, alpha=0.2, color=handle.get_color())


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _grid(n: int) -> tuple[Any, list[Any]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat


def limited_data(cells: list[Cell], path: Path) -> Path | None:
    """Score against minutes of pre-training audio, with flat references."""
    curve = [c for c in cells if c["protocol"] == "limited_data" and "metrics" in c]
    if not curve:
        return None
    references = [c for c in cells if c["protocol"] == "full" and "metrics" in c]
    panels = _panels(curve)
    fig, axes = _grid(len(panels))
    for ax, ((dataset, task), group) in zip(axes, panels.items(), strict=False):
        _line(ax, [c["variant"]["minutes"] for c in group], group, "pre-trained (budget)")
        for ref in references:
            if (ref["dataset"], ref["task"]) == (dataset, task):
                ax.axhline(_figure(ref)[0], linestyle="--", linewidth=1, label=ref["embedder"])
        ax.set_xscale("log")
        ax.set(title=f"{dataset} / {task}", xlabel="pre-training audio (minutes)", ylabel=group[0]["metric"])
        ax.legend(fontsize=7)
    return _save(fig, path)


def few_shot(cells: list[Cell], path: Path) -> Path | None:
    """Score against K shots, one line per (embedder, N)."""
    curve = [c for c in cells if c["protocol"] == "few_shot" and "metrics" in c]
    if not curve:
        return None
    panels = _panels(curve)
    fig, axes = _grid(len(panels))
    for ax, ((dataset, task), group) in zip(axes, panels.items(), strict=False):
        lines: dict[tuple[str, int], list[Cell]] = defaultdict(list)
        for c in group:
            n = c["variant"].get("n_tags", c["variant"].get("n_ways"))
            lines[(c["embedder"], n)].append(c)
        for (name, n), line in sorted(lines.items()):
            _line(ax, [c["variant"]["k_shots"] for c in line], line, f"{name} N={n}")
        ax.set(title=f"{dataset} / {task}", xlabel="K (clips per tag or class)", ylabel=group[0]["metric"])
        ax.legend(fontsize=7)
    return _save(fig, path)


def noise(cells: list[Cell], path: Path) -> Path | None:
    """Score against SNR, one line per embedder; clean audio at the right."""
    curve = [
        c for c in cells if c["protocol"] == "noise" and "metrics" in c and c["variant"]["gain_db"] == 0.0
    ]
    if not curve:
        return None
    finite = [c["variant"]["snr_db"] for c in curve if math.isfinite(c["variant"]["snr_db"])]
    clean_at = (max(finite) + 10) if finite else 0.0
    panels = _panels(curve)
    fig, axes = _grid(len(panels))
    for ax, ((dataset, task), group) in zip(axes, panels.items(), strict=False):
        lines: dict[str, list[Cell]] = defaultdict(list)
        for c in group:
            lines[c["embedder"]].append(c)
        for name, line in sorted(lines.items()):
            xs = [c["variant"]["snr_db"] if math.isfinite(c["variant"]["snr_db"]) else clean_at for c in line]
            _line(ax, xs, line, name)
        ticks = [*sorted(set(finite)), clean_at]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks[:-1]] + ["inf"])
        ax.set(title=f"{dataset} / {task}", xlabel="SNR (dB)", ylabel=group[0]["metric"])
        ax.legend(fontsize=7)
    return _save(fig, path)


def write_all(cells: list[Cell], out: Path) -> list[Path]:
    """Every figure that the cells support; returns the files written."""
    made = [
        limited_data(cells, out / "limited_data.png"),
        few_shot(cells, out / "few_shot.png"),
        noise(cells, out / "noise.png"),
    ]
    return [p for p in made if p is not None]
