"""`jaxmusic embed`: frozen-encoder embeddings of every clip, window by window.

Each clip is cut into consecutive encoder-length windows (the remainder dropped; a
clip shorter than one window is zero-padded), as CLMR evaluates. Per split we write
`SPLIT.npz` with `window_embeddings` [W, D], `window_clip` [W] (the clip each window
belongs to), `clip_embeddings` [N, D] (window mean), `clip_ids` [N] and one
`label_TASK` array per task (single: int [N]; multi: multi-hot [N, C]; regression:
float [N]); plus `embeddings.json` with the tasks and where the encoder came from.
Written without pickle, each file atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from jaxmusic.config import ConfigError
from jaxmusic.data import records
from jaxmusic.data.pipeline import encode_label
from jaxmusic.data.sources import open_split, read_manifest
from jaxmusic.models.registry import build_encoder
from jaxmusic.preprocess import dequantize
from jaxmusic.train import checkpoint

EMBEDDINGS_META = "embeddings.json"


def load_encoder_variables(
    config: ml_collections.ConfigDict, workdir: str | Path | None, seed: int = 0
) -> tuple[dict[str, Any], str]:
    """The encoder's variables: from the newest checkpoint in `workdir` (encoder only,
    see `checkpoint.restore_encoder`), or freshly initialised from `seed` when `workdir`
    is None. Returns them and a description of where they came from."""
    encoder = build_encoder(config.model)
    init = lambda: encoder.init(
        jax.random.PRNGKey(seed), jnp.zeros((1, config.data.crop_samples)), train=False
    )
    if workdir is None:
        return jax.device_get(init()), f"random-init seed {seed}"
    variables, step = checkpoint.restore_encoder(workdir)
    expected = jax.eval_shape(init)  # shapes only: nothing is initialised
    shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), dict(tree))
    if shapes(variables) != shapes(expected):
        raise ConfigError(
            f"the encoder in {workdir} does not match config.model: embed with the config it was trained with"
        )
    return variables, f"{Path(workdir).absolute() / 'checkpoints'} step {step}"


def _windows(audio: np.ndarray, window: int) -> np.ndarray:
    n = max(1, audio.shape[0] // window)
    padded = np.zeros(n * window, np.int16)
    take = min(audio.shape[0], n * window)
    padded[:take] = audio[:take]
    return padded.reshape(n, window)


def _labels_array(task: dict[str, Any], values: list[Any]) -> np.ndarray:
    out = np.stack([encode_label(task, v) for v in values])
    # Class indices are int64 in the embeddings file, as its format has always said.
    return out.astype(np.int64) if task["kind"] == "single" else out


def embed_split(
    config: ml_collections.ConfigDict,
    variables: dict[str, Any],
    data_dir: str,
    split: str,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Embeddings and labels of every clip of a split (see the module docstring)."""
    manifest = read_manifest(data_dir)
    encoder = build_encoder(config.model)
    window = config.data.crop_samples
    batch = config.embed.batch_size

    @jax.jit
    def apply(variables: dict[str, Any], audio: jax.Array) -> jax.Array:
        return encoder.apply(variables, dequantize(audio), train=False)["pooled"]

    source = open_split(data_dir, split)
    windows, owners, ids = [], [], []
    labels: dict[str, list[Any]] = {task: [] for task in manifest["tasks"]}
    for i in range(len(source)):
        rec = records.decode(source[i])
        w = _windows(rec["audio"], window)
        windows.append(w)
        owners.append(np.full(len(w), i, np.int64))
        ids.append(rec["id"])
        for task, values in labels.items():
            values.append(rec["labels"][task])
    all_windows = np.concatenate(windows)
    out = []
    for lo in tqdm(range(0, len(all_windows), batch), desc=f"embed {split}", disable=not progress):
        chunk = all_windows[lo : lo + batch]
        # A fixed batch shape compiles once; the padding rows are dropped.
        padded = np.zeros((batch, window), np.int16)
        padded[: len(chunk)] = chunk
        out.append(np.asarray(apply(variables, padded))[: len(chunk)])
    window_embeddings = np.concatenate(out).astype(np.float32)
    window_clip = np.concatenate(owners)
    clip_embeddings = np.stack([window_embeddings[window_clip == i].mean(axis=0) for i in range(len(source))])
    result = {
        "window_embeddings": window_embeddings,
        "window_clip": window_clip,
        "clip_embeddings": clip_embeddings,
        "clip_ids": np.asarray(ids),
    }
    for task, values in labels.items():
        result[f"label_{task}"] = _labels_array(manifest["tasks"][task], values)
    return result


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
    manifest = read_manifest(config.data.dir)
    for split in config.embed.splits:
        arrays = embed_split(config, variables, config.data.dir, split, progress)
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
