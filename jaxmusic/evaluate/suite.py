"""Benchmark suites: embedders x datasets/tasks x protocols, in one config file.

A suite is a Python file whose `get_config(arg)` returns a ConfigDict built on
`suite_schema()` (see suites/ for the papers' protocols). Every key is known, so a
typo in the file or in a `--suite.KEY=VALUE` override is refused in one line, and
`plan()` checks every dataset, task, embedder and protocol before any work.

    embedders.NAME.kind = "checkpoint" | "random_init" | "train" | "handcrafted" | "external"
      checkpoint:  workdir (a training or `convert` workdir), layer
      random_init: config (a config file[:arg]), overrides, seed, layer
      train:       config, overrides (("key.path=value", ...)), data (a dataset NAME), layer;
                   trained under OUT/train/NAME, resumed if interrupted
      handcrafted: features (mfcc, chroma, cqt, spectral_contrast), window_seconds
      external:    folders ({dataset NAME: folder of SPLIT.npz}; see evaluate/external.py)
    datasets.NAME.dir (a prepared dataset; "" = built-in synthetic music from
      datasets.NAME.synth, prepared under OUT/data/NAME), datasets.NAME.tasks (() = all)
    protocols.full.enabled, protocols.label_limited.fractions, protocols.few_shot.{n_tags,
      k_shots, episodes, seed}, protocols.knn.k (0 = off), protocols.centroid.enabled,
      protocols.noise.{snr_db, gain_db, seed}, protocols.limited_data.{config, overrides,
      data, budgets, layer}, protocols.language.{enabled, split, prompt} (retrieval and
      zero-shot tagging of checkpoint and train embedders trained with a language objective)
    probe.{model, learning_rates, weight_decays, seeds, batch_size, max_epochs, patience,
      hidden, dropout}; bootstrap (resamples per interval); seed; embed_batch_size; workers
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import ml_collections

from jaxmusic import config as config_lib
from jaxmusic.config import ConfigError
from jaxmusic.evaluate.probe import ProbeConfig

KINDS = {
    "checkpoint": {"workdir": "", "layer": "pooled"},
    "random_init": {"config": "", "overrides": (), "seed": 0, "layer": "pooled"},
    "train": {"config": "", "overrides": (), "data": "", "layer": "pooled"},
    "handcrafted": {"features": ("mfcc",), "window_seconds": 3.0},
    "external": {"folders": {}},
}
PROTOCOLS = ("full", "label_limited", "few_shot", "knn", "centroid", "noise", "limited_data", "language")
# The language protocol's job per (embedder, dataset) that is not about one task.
RETRIEVAL = "retrieval"
SPLITS = ("train", "valid", "test")


def suite_schema() -> ml_collections.ConfigDict:
    """Every key a suite may set, with defaults (all protocols but `full` off)."""
    from jaxmusic.evaluate.language import DEFAULT_PROMPT

    s = ml_collections.ConfigDict()
    s.embedders = ml_collections.ConfigDict()
    s.datasets = ml_collections.ConfigDict()
    p = s.protocols = ml_collections.ConfigDict()
    p.full = {"enabled": True}
    p.label_limited = {"fractions": ()}
    p.few_shot = {"n_tags": (), "k_shots": (), "episodes": 10, "seed": 0}
    p.knn = {"k": 0}
    p.centroid = {"enabled": False}
    # inf = clean audio; each gain is a variant of its own (with no noise).
    p.noise = {"snr_db": (), "gain_db": (), "seed": 0}
    p.limited_data = {"config": "", "overrides": (), "data": "", "budgets": (), "layer": "pooled"}
    p.language = {"enabled": False, "split": "test", "prompt": DEFAULT_PROMPT}
    s.probe = dataclasses.asdict(ProbeConfig())
    s.bootstrap = 1000
    s.seed = 0
    s.embed_batch_size = 64
    s.workers = 1  # processes for handcrafted features
    s.progress_bar = True
    return s


def embedder(kind: str, **values: Any) -> ml_collections.ConfigDict:
    """A suite's embedder entry: `kind` and its keys (the others take their defaults)."""
    if kind not in KINDS:
        raise ConfigError(f"embedder kind must be one of {sorted(KINDS)}, got {kind!r}")
    unknown = sorted(set(values) - set(KINDS[kind]))
    if unknown:
        raise ConfigError(f"{kind} embedders take {sorted(KINDS[kind])}, not {unknown}")
    return ml_collections.ConfigDict({"kind": kind, **KINDS[kind], **values})


def dataset(dir: str = "", tasks: tuple[str, ...] = (), **synth: Any) -> ml_collections.ConfigDict:
    """A suite's dataset entry; with no `dir`, synthetic music made from `synth` keys
    (clips, seed, sample_rate, duration_s)."""
    defaults = config_lib.base_config().synth.to_dict()
    unknown = sorted(set(synth) - set(defaults))
    if unknown:
        raise ConfigError(f"synthetic datasets take {sorted(defaults)}, not {unknown}")
    return ml_collections.ConfigDict({"dir": dir, "tasks": tuple(tasks), "synth": {**defaults, **synth}})


def _check_keys(node: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, where: str) -> None:
    for key, value in node.items():
        if key not in schema:
            raise ConfigError(f"unknown suite key '{where}{key}'{config_lib._suggest(key, list(schema))}")
        if isinstance(schema[key], ml_collections.ConfigDict) and where + key not in (
            "embedders",
            "datasets",
        ):
            if not isinstance(value, ml_collections.ConfigDict):
                raise ConfigError(f"suite key '{where}{key}' must be a section")
            _check_keys(value, schema[key], f"{where}{key}.")


def load(spec: str, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    """A suite file (`suites/NAME.py[:arg]`), with `--suite.KEY=VALUE` overrides."""
    suite = config_lib.load_file(spec, folder="suites")
    _check_keys(suite, suite_schema(), "")
    for item in overrides:
        if not item.startswith("--suite."):
            raise ConfigError(f"unrecognised argument {item!r}: suite overrides look like --suite.KEY=VALUE")
        config_lib.apply_override(suite, item, prefix="suite")
    return suite


def probe_config(suite: ml_collections.ConfigDict) -> ProbeConfig:
    """The suite's probe section as a ProbeConfig (validated)."""
    try:
        return ProbeConfig.from_mapping(suite.probe.to_dict())
    except (TypeError, ValueError) as e:
        raise ConfigError(f"suite probe: {e}") from None


@dataclasses.dataclass(frozen=True)
class Job:
    """The unit of work and of caching: one embedder, dataset, task and protocol."""

    embedder: str
    dataset: str
    task: str
    protocol: str

    @property
    def id(self) -> str:
        return f"{self.embedder}/{self.dataset}/{self.task}/{self.protocol}"


def check_protocols(suite: ml_collections.ConfigDict) -> None:
    """Refuse protocol settings that cannot run, in one line each."""
    p = suite.protocols
    for f in p.label_limited.fractions:
        if not 0 < f <= 1:
            raise ConfigError(f"protocols.label_limited.fractions must lie in (0, 1], got {f}")
    if bool(p.few_shot.n_tags) != bool(p.few_shot.k_shots):
        raise ConfigError("protocols.few_shot needs both n_tags and k_shots (or neither)")
    if min((*p.few_shot.n_tags, *p.few_shot.k_shots), default=1) < 1 or p.few_shot.episodes < 1:
        raise ConfigError("protocols.few_shot n_tags, k_shots and episodes must be >= 1")
    for snr in p.noise.snr_db:
        if math.isnan(snr):
            raise ConfigError("protocols.noise.snr_db must be numbers (inf: clean)")
    if p.knn.k < 0:
        raise ConfigError("protocols.knn.k must be >= 0 (0: off)")
    if suite.bootstrap < 0:
        raise ConfigError("bootstrap must be >= 0 (0: no intervals)")
    if p.language.enabled:
        from jaxmusic.evaluate.language import check_prompt

        if p.language.split not in SPLITS:
            raise ConfigError(f"protocols.language.split must be one of {SPLITS}, got {p.language.split!r}")
        check_prompt(p.language.prompt)
    ld = p.limited_data
    if ld.budgets:
        if not ld.config or not ld.data:
            raise ConfigError("protocols.limited_data needs config (a config file) and data (a dataset name)")
        if ld.data not in suite.datasets:
            raise ConfigError(
                f"protocols.limited_data.data {ld.data!r} is not one of the suite's datasets {list(suite.datasets)}"
            )


def enabled(suite: ml_collections.ConfigDict) -> list[str]:
    """The protocols a suite runs."""
    p = suite.protocols
    on = {
        "full": p.full.enabled,
        "label_limited": bool(p.label_limited.fractions),
        "few_shot": bool(p.few_shot.n_tags),
        "knn": p.knn.k > 0,
        "centroid": p.centroid.enabled,
        "noise": bool(p.noise.snr_db or p.noise.gain_db),
        "limited_data": bool(p.limited_data.budgets),
        "language": p.language.enabled,
    }
    return [name for name in PROTOCOLS if on[name]]


def applies(protocol: str, kind: str, embedder_kind: str, language_model: bool = False) -> str | None:
    """Why `protocol` cannot run for a task kind (RETRIEVAL for the language protocol's
    retrieval job) and embedder kind (None: it can); `language_model`: whether the
    embedder's run was trained with a language objective."""
    if protocol in ("few_shot", "centroid") and kind == "regression":
        return "a regression task has no classes"
    if protocol == "noise" and embedder_kind == "external":
        return "external embeddings have no audio to perturb"
    if protocol == "language":
        if embedder_kind not in ("checkpoint", "train") or not language_model:
            return "only a run trained with a language objective scores texts"
        if kind == "regression":
            return "a regression task has no class names to prompt with"
    return None


def dataset_dir(suite: ml_collections.ConfigDict, name: str, out: Path) -> Path:
    """Where a suite dataset lives (its synthetic music is prepared under OUT/data/NAME)."""
    d = suite.datasets[name]
    return Path(d.dir) if d.dir else out / "data" / name


def runlocal(
    suite: ml_collections.ConfigDict,
    config: str,
    layer: str = "pooled",
    trained: str | None = "trained",
    features: tuple[str, ...] = ("mfcc",),
) -> ml_collections.ConfigDict:
    """Shrink a paper suite to CPU minutes: the built-in synthetic music (8 kHz, the
    `runlocal` configs' rate), an encoder trained briefly on it by `config` (named
    `trained`; None: none) beside the same encoder at random init and handcrafted
    `features`, and fewer bootstrap resamples."""
    suite.datasets = {"synth": dataset(clips=240, sample_rate=8000, duration_s=4.0, seed=0)}
    embedders = {
        "random-init": embedder("random_init", config=config, layer=layer),
        "+".join(features): embedder("handcrafted", features=features, window_seconds=1.0),
    }
    if trained:
        embedders[trained] = embedder("train", config=config, data="synth", layer=layer)
    suite.embedders = embedders
    suite.bootstrap = 200
    return suite
