"""Objectives by name, each built from `(config, manifest, workdir)` and configured by its
own section `objective.<name>`. Adding an objective is one module here and one line below.

`workdir` is the run's folder when there is one: an objective with assets (a language
objective's tokenizer) reads them from there on resume and for evaluation, and builds
them afresh when it is None or holds none yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from jaxmusic.config import ConfigError
from jaxmusic.objectives import masked, mulap, mule, muscall, simclr, supervised
from jaxmusic.objectives.base import Objective

OBJECTIVES: dict[str, Any] = {
    "simclr": simclr,
    "supervised": supervised,
    "mule": mule,
    "mae": masked,
    "mulap": mulap,
    "muscall": muscall,
}


def objective_config() -> ml_collections.ConfigDict:
    """The `objective` section of the schema: the name plus every objective's own section."""
    c = ml_collections.ConfigDict()
    c.name = "simclr"
    for name, module in OBJECTIVES.items():
        c[name] = module.default_config()
    return c


def build_objective(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> Objective:
    """The objective named by `config.objective.name`; its own config errors are ConfigErrors."""
    name = config.objective.name
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective.name '{name}' (known: {', '.join(OBJECTIVES)})")
    try:
        return OBJECTIVES[name].build(config, manifest, workdir)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from None
