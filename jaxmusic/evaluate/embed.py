"""`jaxmusic embed`: frozen-encoder embeddings of every clip, window by window.

Each clip is cut into consecutive encoder-length windows (evaluate/extract.py: the
remainder dropped, a clip shorter than one window zero-padded), as CLMR evaluates. The
windows' embeddings stream into `OUT/windows/` (resumable); per split we then write
`SPLIT.npz` with `window_embeddings` [W, D], `window_clip` [W] (the clip each window
belongs to), `clip_embeddings` [N, D] (window mean), `clip_ids` [N] and one
`label_TASK` array per task (single: int [N]; multi: multi-hot [N, C]; regression:
float [N]); plus `embeddings.json` with the tasks and where the encoder came from.
Written without pickle, each file atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import ml_collections
import numpy as np

from jaxmusic.data import records
from jaxmusic.data.sources import read_manifest
from jaxmusic.evaluate.embedders import EncoderEmbedder, load_encoder_variables
from jaxmusic.evaluate.extract import clip_mean, extract, load, split_labels

__all__ = ["EMBEDDINGS_META", "load_encoder_variables", "read_split", "write_embeddings"]

EMBEDDINGS_META = "embeddings.json"


def write_embeddings(
    config: ml_collections.ConfigDict,
    workdir: str | Path | None,
    out_dir: str | Path,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Embed every split in `config.embed.splits` into `out_dir`; returns it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    variables, origin = load_encoder_variables(config, workdir, seed)
    embedder = EncoderEmbedder(config, variables, {"origin": origin}, batch_size=config.embed.batch_size)
    manifest = read_manifest(config.data.dir)
    for split in config.embed.splits:
        # Windows stream into a cache folder first (resumable); the .npz is packed from it.
        windows = load(extract(embedder, config.data.dir, split, out_dir / "windows", progress=progress))
        clip_ids, labels = split_labels(config.data.dir, split)
        arrays = {
            "window_embeddings": np.asarray(windows["window_embeddings"]),
            "window_clip": windows["window_clip"],
            "clip_embeddings": clip_mean(windows["window_embeddings"], windows["window_clip"], len(clip_ids)),
            "clip_ids": np.asarray(clip_ids),
        }
        for task, values in labels.items():
            # Class indices are int64 in the embeddings file, as its format has always said.
            arrays[f"label_{task}"] = (
                values.astype(np.int64) if manifest["tasks"][task]["kind"] == "single" else values
            )
        tmp = out_dir / f"{split}.partial.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, out_dir / f"{split}.npz")
    records.write_json_atomic(
        out_dir / EMBEDDINGS_META,
        {
            "encoder": origin,
            "model": config.model.to_dict(),
            "window_samples": config.data.crop_samples,
            "sample_rate": manifest["sample_rate"],
            "data_dir": config.data.dir,
            "splits": list(config.embed.splits),
            "tasks": manifest["tasks"],
        },
    )
    return out_dir


def read_split(emb_dir: str | Path, split: str) -> dict[str, np.ndarray]:
    """Load one split written by `write_embeddings` (no pickle)."""
    with np.load(Path(emb_dir) / f"{split}.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
