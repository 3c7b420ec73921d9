"""Embeddings computed by another tool, measured beside jaxmusic's own.

Layout: a folder with one `SPLIT.npz` per split of the dataset (train, valid, test),
each holding, without pickle,

- `clip_ids`: str [N], the dataset's clip ids (`jaxmusic prepare` writes them into
  every record; `split_index` or the `embed` command's output lists them), and either
- `embeddings`: float [N, D], one vector per clip, or
- `window_embeddings`: float [W, D] with `window_clip`: int [W] (the row of
  `clip_ids` each window belongs to), for tools that embed windows.

The rows may come in any order and may hold clips the dataset lacks; every clip of the
dataset's split must be there. Labels always come from the dataset, never from the
file, so every embedder is scored against the same truth. `jaxmusic embed` writes this
layout too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxmusic.config import ConfigError
from jaxmusic.evaluate.embedders import identity_hash


class ExternalEmbeddings:
    """A folder of `SPLIT.npz` files in the layout above."""

    def __init__(self, folder: str | Path, name: str = "") -> None:
        self.folder = Path(folder)
        self.name = name or self.folder.name
        if not self.folder.is_dir():
            raise ConfigError(f"external embeddings folder {self.folder} does not exist")

    def identity(self) -> dict[str, Any]:
        stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self.folder.glob("*.npz"))
        return {
            "kind": "external",
            "folder": str(self.folder.absolute()),
            "files": identity_hash({"s": stats}),
        }

    def check(self, splits: list[str]) -> None:
        """Refuse, before any work, a folder that lacks a split's file or its keys."""
        for split in splits:
            path = self.folder / f"{split}.npz"
            if not path.is_file():
                raise ConfigError(
                    f"external embeddings {self.folder} have no {split}.npz (see jaxmusic/evaluate/external.py)"
                )
            with np.load(path, allow_pickle=False) as f:
                keys = set(f.files)
            if "clip_ids" not in keys or not (
                {"embeddings"} <= keys or {"window_embeddings", "window_clip"} <= keys
            ):
                raise ConfigError(
                    f"{path} must hold clip_ids and embeddings (or window_embeddings and window_clip); it has {sorted(keys)}"
                )

    def split(self, split: str, clip_ids: list[str]) -> dict[str, np.ndarray]:
        """Window embeddings and window_clip aligned to the dataset's `clip_ids` order."""
        path = self.folder / f"{split}.npz"
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read {path}: {e}") from None
        ids = [str(i) for i in data["clip_ids"]]
        if "embeddings" in data:
            x, owner = np.asarray(data["embeddings"]), np.arange(len(ids))
        else:
            x, owner = np.asarray(data["window_embeddings"]), np.asarray(data["window_clip"]).astype(np.int64)
        if (
            x.ndim != 2
            or owner.shape != (x.shape[0],)
            or (owner.size and not 0 <= owner.min() <= owner.max() < len(ids))
        ):
            raise ConfigError(
                f"{path}: embeddings {x.shape} and window_clip {owner.shape} do not fit {len(ids)} clip_ids"
            )
        if not np.isfinite(x).all():
            raise ConfigError(f"{path} holds NaN/inf embeddings")
        row = {cid: i for i, cid in enumerate(clip_ids)}
        missing = [cid for cid in clip_ids if cid not in set(ids)]
        if missing:
            raise ConfigError(
                f"{path} lacks {len(missing)} of the split's {len(clip_ids)} clips (first: {missing[0]!r})"
            )
        target = np.asarray([row.get(ids[o], -1) for o in owner])
        keep = target >= 0
        order = np.argsort(target[keep], kind="stable")
        return {
            "window_embeddings": x[keep][order].astype(np.float32),
            "window_clip": target[keep][order],
            "clip_ids": clip_ids,
        }
