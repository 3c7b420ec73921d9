"""Benchmark: a whole probe hyper-parameter grid, jaxmusic's vmapped probe vs scikit-learn.

Data: synthetic embeddings the size of MagnaTagATune (18,700 train, 1,800 valid and
5,300 test clips, one 512-d window per clip, 50 tags). Features are correlated Gaussians
with a decaying spectrum, an offset and a scale; tags come from a random linear teacher
on the latent plus Gaussian noise, thresholded per tag at frequencies from 2 % to 20 %
(log-spaced, so several tags are rare). The labels are learnable but not separable.

jaxmusic: `jaxmusic.evaluate.probe.probe` with a linear probe over learning rates x
weight decays x seeds, all fitted at once (`jax.vmap` of the pure fit, mini-batch
AdamW, early stopping on validation macro ROC-AUC in `lax.while_loop`). Its wall time
is the whole `probe` call; the first run includes compilation, the second (optional)
reuses the jit cache, as later tasks of the same shapes would.

Reference, measured in the same run: scikit-learn's `OneVsRestClassifier(
LogisticRegression(solver="lbfgs"), n_jobs=1)` on features standardised with the train
statistics, as jaxmusic does. It has no learning rate and no seed (a deterministic solver
on a convex problem), so its grid is the regularisation axis only: each weight decay
lambda maps to C = 1 / (lambda * n_train). AdamW's decoupled weight decay is not an L2
penalty (and jaxmusic also stops early), so the two grids are related, not identical.
scikit-learn fits only the distinct C values, i.e. fewer settings than jaxmusic, which
makes the whole-grid ratio conservative; the per-setting ratio is printed too.

Both sides choose their setting by validation macro ROC-AUC and report the test macro
ROC-AUC of that setting, both computed by `jaxmusic.metrics.macro_roc_auc`. Goals: the
whole grid at least 10x faster than scikit-learn (first run, compilation included) and
test ROC-AUC within 0.005 of scikit-learn's.

    python benchmarks/probe_grid.py [--small] [--train 18700] [--valid 1800] [--test 5300]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings

import jax
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from jaxmusic.evaluate.probe import ProbeConfig, Split, Standardizer, probe
from jaxmusic.metrics import macro_roc_auc

FULL = {"train": 18700, "valid": 1800, "test": 5300}
SMALL = {"train": 2000, "valid": 500, "test": 1000}
FULL_GRID = {"learning_rates": (3e-4, 1e-3, 3e-3), "weight_decays": (5e-5, 5e-4, 5e-3, 5e-2), "seeds": (0, 1)}
SMALL_GRID = {"learning_rates": (3e-3, 1e-2), "weight_decays": (5e-4, 5e-3, 5e-2), "seeds": (0, 1)}


def make_data(
    n: dict[str, int], dim: int, tags: int, noise: float, seed: int
) -> tuple[dict[str, Split], np.ndarray]:
    """Train/valid/test splits (one window per clip) and the tag frequencies used."""
    rng = np.random.default_rng(seed)
    total = sum(n.values())
    spectrum = 1.0 / np.sqrt(np.arange(1, dim + 1))
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    latent = rng.standard_normal((total, dim))
    x = 3.0 * (latent * spectrum) @ rotation + rng.normal(0.0, 2.0, dim)
    teacher = rng.standard_normal((dim, tags)) / math.sqrt(dim)
    logits = latent @ teacher + noise * rng.standard_normal((total, tags))
    freq = rng.permutation(np.geomspace(0.02, 0.20, tags))
    cut = np.array([np.quantile(logits[:, j], 1.0 - f) for j, f in enumerate(freq)])
    labels = (logits > cut).astype(np.float32)
    splits, start = {}, 0
    for name, size in n.items():
        rows = slice(start, start + size)
        splits[name] = Split(x[rows].astype(np.float32), np.arange(size), labels[rows])
        start += size
    return splits, freq


def run_jaxmusic(splits: dict[str, Split], config: ProbeConfig, tags: int) -> tuple[float, object]:
    task = {"kind": "multi", "classes": [f"tag{i}" for i in range(tags)]}
    start = time.perf_counter()
    outcome = probe(task, splits["train"], splits["valid"], splits["test"], config)
    return time.perf_counter() - start, outcome


def run_sklearn(splits: dict[str, Split], cs: list[float], max_iter: int) -> dict:
    """Every C fitted; the one best on validation macro ROC-AUC reported on test."""
    start = time.perf_counter()
    norm = Standardizer.fit("multi", splits["train"])
    x = {name: norm.x(s.window_embeddings) for name, s in splits.items()}
    per_c, unconverged = [], 0
    for c in cs:
        t = time.perf_counter()
        model = OneVsRestClassifier(LogisticRegression(solver="lbfgs", C=c, max_iter=max_iter), n_jobs=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x["train"], splits["train"].labels)
        unconverged += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        valid = macro_roc_auc(splits["valid"].labels, model.predict_proba(x["valid"]))
        test = macro_roc_auc(splits["test"].labels, model.predict_proba(x["test"]))
        per_c.append({"C": c, "valid": valid, "test": test, "seconds": time.perf_counter() - t})
    seconds = time.perf_counter() - start
    best = max(range(len(cs)), key=lambda i: per_c[i]["valid"])  # first best wins ties
    return {"seconds": seconds, "per_c": per_c, "best": per_c[best], "unconverged": unconverged}


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="quick check: 2,000 train clips, 12 settings")
    p.add_argument("--train", type=int, help=f"train clips (default {FULL['train']}; small {SMALL['train']})")
    p.add_argument("--valid", type=int, help=f"valid clips (default {FULL['valid']}; small {SMALL['valid']})")
    p.add_argument("--test", type=int, help=f"test clips (default {FULL['test']}; small {SMALL['test']})")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--tags", type=int, default=50)
    p.add_argument("--noise", type=float, default=1.0, help="teacher noise std (signal std is 1)")
    p.add_argument("--learning-rates", type=floats, help="comma-separated")
    p.add_argument("--weight-decays", type=floats, help="comma-separated; C = 1 / (wd * n_train)")
    p.add_argument("--seeds", type=lambda s: tuple(int(v) for v in s.split(",")), help="comma-separated")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=1000, help="lbfgs iterations per tag")
    p.add_argument("--no-second-run", action="store_true", help="skip the warm-cache jaxmusic run")
    p.add_argument("--data-seed", type=int, default=0)
    args = p.parse_args()
    sizes, grid = (SMALL, SMALL_GRID) if args.small else (FULL, FULL_GRID)
    n = {k: getattr(args, k) or sizes[k] for k in ("train", "valid", "test")}
    config = ProbeConfig(
        model="linear",
        learning_rates=args.learning_rates or grid["learning_rates"],
        weight_decays=args.weight_decays or grid["weight_decays"],
        seeds=args.seeds or grid["seeds"],
        batch_size=args.batch_size,
        max_epochs=args.max_epochs,
        patience=args.patience,
    )
    cs = [1.0 / (wd * n["train"]) for wd in dict.fromkeys(config.weight_decays)]
    splits, freq = make_data(n, args.dim, args.tags, args.noise, args.data_seed)

    t_jax, outcome = run_jaxmusic(splits, config, args.tags)
    t_jax_warm = None if args.no_second_run else run_jaxmusic(splits, config, args.tags)[0]
    ref = run_sklearn(splits, cs, args.max_iter)

    n_jax, n_ref = len(config.grid()), len(cs)
    t_ref = ref["seconds"]
    auc_jax, auc_ref = outcome.test_metrics["roc_auc"], ref["best"]["test"]
    diff = abs(auc_jax - auc_ref)
    setting = outcome.setting
    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}; "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    )
    print(
        f"data: {n['train']} train / {n['valid']} valid / {n['test']} test clips, {args.dim}-d, "
        f"{args.tags} tags (frequency {freq.min():.1%}..{freq.max():.1%}), one window per clip"
    )
    print(
        f"jaxmusic grid: lr {config.learning_rates} x wd {config.weight_decays} x seeds {config.seeds}, "
        f"batch {config.batch_size}, max {config.max_epochs} epochs, patience {config.patience}; "
        f"scikit-learn grid: C {tuple(f'{c:.3g}' for c in cs)}, lbfgs max_iter {args.max_iter} "
        f"({ref['unconverged']} of {n_ref * args.tags} binary fits hit max_iter)"
    )
    print()
    print(
        "| measured | jaxmusic, first run (compiles) | jaxmusic, second run (jit cache warm) | scikit-learn |"
    )
    print("|---|---|---|---|")
    warm = lambda fmt: "-" if t_jax_warm is None else fmt(t_jax_warm)
    print(f"| settings fitted | {n_jax} | {n_jax} | {n_ref} (one per C) |")
    print(f"| wall time of the grid (s) | {t_jax:.1f} | {warm(lambda t: f'{t:.1f}')} | {t_ref:.1f} |")
    print(
        f"| seconds per setting | {t_jax / n_jax:.2f} | {warm(lambda t: f'{t / n_jax:.2f}')} | "
        f"{t_ref / n_ref:.2f} |"
    )
    print(
        f"| speed, whole grid (scikit-learn s / jaxmusic s) | {t_ref / t_jax:.2f}x | "
        f"{warm(lambda t: f'{t_ref / t:.2f}x')} | 1.00x |"
    )
    print(
        f"| speed per setting | {(t_ref / n_ref) / (t_jax / n_jax):.2f}x | "
        f"{warm(lambda t: f'{(t_ref / n_ref) / (t / n_jax):.2f}x')} | 1.00x |"
    )
    chosen = (
        f"lr {setting['learning_rate']:g}, wd {setting['weight_decay']:g} "
        f"(C {1.0 / (setting['weight_decay'] * n['train']):.3g}), seed {setting['seed']}, "
        f"best epoch {outcome.best_epoch} of {outcome.epochs}"
    )
    print(f"| selected setting | {chosen} | same | C {ref['best']['C']:.3g} |")
    print(
        f"| valid macro ROC-AUC of it | {outcome.valid_metrics['roc_auc']:.4f} | same | {ref['best']['valid']:.4f} |"
    )
    print(f"| test macro ROC-AUC of it | {auc_jax:.4f} | same | {auc_ref:.4f} |")
    print(f"| abs. test ROC-AUC difference | {diff:.4f} | | |")
    print()
    print("| weight decay | C | jaxmusic best valid ROC-AUC over lr x seed | scikit-learn valid | scikit-learn test | scikit-learn fit + predict (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    grid_settings = config.grid()
    for wd, row in zip(dict.fromkeys(config.weight_decays), ref["per_c"], strict=True):
        best_jax = max(
            v for g, v in zip(grid_settings, outcome.grid_valid, strict=True) if g["weight_decay"] == wd
        )
        print(
            f"| {wd:g} | {row['C']:.3g} | {best_jax:.4f} | {row['valid']:.4f} | {row['test']:.4f} | "
            f"{row['seconds']:.1f} |"
        )
    print()
    speed_ok, auc_ok = t_ref / t_jax >= 10.0, diff <= 0.005
    print(
        f"goal 1, whole grid >= 10x faster than scikit-learn (first run, compilation included): "
        f"{'met' if speed_ok else 'NOT met'} ({t_ref / t_jax:.2f}x"
        + ("" if t_jax_warm is None else f"; {t_ref / t_jax_warm:.2f}x with a warm jit cache")
        + ")"
    )
    print(
        f"goal 2, test macro ROC-AUC within 0.005 of scikit-learn's: "
        f"{'met' if auc_ok else 'NOT met'} (|{auc_jax:.4f} - {auc_ref:.4f}| = {diff:.4f})"
    )


if __name__ == "__main__":
    main()
