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
import zipfile
from pathlib import Path

import ml_collections
import numpy as np

from jaxmusic.config import ConfigError
from jaxmusic.data import records
from jaxmusic.data.sources import read_manifest
from jaxmusic.evaluate.embedders import EncoderEmbedder, load_encoder_variables
from jaxmusic.evaluate.extract import clip_mean, extract, load, split_labels

__all__ = ["EMBEDDINGS_META", "EmbeddingsError", "load_encoder_variables", "read_split", "write_embeddings"]

EMBEDDINGS_META = "embeddings.json"


def write_embeddings(
    config: ml_collections.ConfigDict,
    workdir: str | Path | None,
    out_dir: str | Path,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Embed every split in `config.embed.splits` into `out_dir`; returns it.

    Every requested split is checked before any work; a split without clips is
    skipped with a note (it is left out of `embeddings.json`'s splits).
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(config.data.dir)
    missing = [s for s in config.embed.splits if s not in manifest["splits"]]
    if missing:
        raise ConfigError(
            f"embed.splits {missing} are not splits of {config.data.dir} (it has {', '.join(manifest['splits'])}): "
            f"set --config.embed.splits"
        )
    splits = [s for s in config.embed.splits if manifest["splits"][s].get("clips", 1) > 0]
    for split in sorted(set(config.embed.splits) - set(splits)):
        print(f"embed: split '{split}' of {config.data.dir} has no clips: skipped")
    if not splits:
        raise ConfigError(
            f"every split in embed.splits {list(config.embed.splits)} is empty: nothing to embed"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    variables, origin = load_encoder_variables(config, workdir, seed)
    embedder = EncoderEmbedder(config, variables, {"origin": origin}, batch_size=config.embed.batch_size)
    for split in splits:
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
            "splits": splits,
            "tasks": manifest["tasks"],
        },
    )
    return out_dir


class EmbeddingsError(ValueError):
    """An embeddings folder whose files cannot be used as they are."""


def read_split(emb_dir: str | Path, split: str) -> dict[str, np.ndarray]:
    """Load one split written by `write_embeddings` (no pickle); a missing, damaged or
    non-finite file is one `EmbeddingsError` line."""
    path = Path(emb_dir) / f"{split}.npz"
    if not path.is_file():
        raise EmbeddingsError(f"{path} is missing: re-run `jaxmusic embed` with this split in embed.splits")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise EmbeddingsError(
            f"{path} is damaged ({type(e).__name__}: {e}): re-run `jaxmusic embed`"
        ) from None
    for key in ("window_embeddings", "window_clip"):
        if key not in arrays:
            raise EmbeddingsError(f"{path} has no '{key}': not written by `jaxmusic embed`; re-run it")
    bad = ~np.isfinite(arrays["window_embeddings"]).all(axis=-1)
    if bad.any():
        raise EmbeddingsError(
            f"{path}: {int(bad.sum())} of {bad.size} window embeddings are not finite (a diverged encoder?): "
            "embed a checkpoint from before the divergence"
        )
    return arrays
