"""Embedding extraction: every clip of a split, window by window, streamed to disk.

Each clip is cut into consecutive `window_samples` windows (the remainder dropped; a
clip shorter than one window is zero-padded to one), as CLMR evaluates. Embeddings go
into a memory-mapped `window_embeddings.npy` as they are computed, so a split never
has to fit in memory; `progress.json` records how many clips are done after each
flushed group, so a killed extraction resumes where it stopped; `complete.json`
marks a finished one. The folder is named by a hash of what determines its content
(the embedder's identity, the dataset, the split, any perturbation of the audio), so
a second request for the same embeddings is a cache hit and a changed embedder never
reads stale ones.

Layout of a folder (all NumPy, no pickle): `window_embeddings.npy` float32 [W, D],
`window_clip.npy` int64 [W] (clip of each window), `clip_ids.json`, `info.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jaxmusic.config import ConfigError
from jaxmusic.data import records
from jaxmusic.data.pipeline import encode_label
from jaxmusic.data.sources import open_split, read_manifest
from jaxmusic.data.subsets import split_index
from jaxmusic.evaluate.embedders import Embedder, identity_hash

COMPLETE = "complete.json"
_GROUP_WINDOWS = 256  # windows embedded between two progress records


@dataclasses.dataclass(frozen=True)
class Perturbation:
    """Test-time degradation of the audio before embedding: white noise at `snr_db`
    (None: none) relative to each clip's own power, then a gain of `gain_db`. The noise
    is seeded per clip, so every embedder hears the same noisy audio."""

    snr_db: float | None = None
    gain_db: float = 0.0
    seed: int = 0

    @property
    def is_clean(self) -> bool:
        return self.snr_db is None and self.gain_db == 0.0

    def apply(self, audio: np.ndarray, clip_index: int) -> np.ndarray:
        """int16 [T] -> int16 [T], perturbed."""
        x = audio.astype(np.float64) / 32768.0
        if self.snr_db is not None:
            power = float(np.mean(x**2)) if x.size else 0.0
            rng = np.random.default_rng([self.seed, clip_index])
            x = x + rng.normal(0.0, np.sqrt(power / 10 ** (self.snr_db / 10)), x.shape)
        x = x * 10 ** (self.gain_db / 20)
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


CLEAN = Perturbation()


def windows(audio: np.ndarray, window: int) -> np.ndarray:
    """A clip as consecutive windows [n, window] (remainder dropped, short clips padded)."""
    n = max(1, audio.shape[0] // window)
    padded = np.zeros(n * window, np.int16)
    take = min(audio.shape[0], n * window)
    padded[:take] = audio[:take]
    return padded.reshape(n, window)


def dataset_identity(data_dir: str | Path) -> dict[str, Any]:
    """What names a prepared dataset's content: its folder and its manifest."""
    where = str(data_dir) if str(data_dir).startswith("tfds:") else str(Path(data_dir).absolute())
    return {"dir": where, "manifest": identity_hash(read_manifest(str(data_dir)))}


def cache_dir(
    embedder: Embedder, data_dir: str | Path, split: str, cache_root: str | Path, perturbation: Perturbation
) -> Path:
    """Where `extract` keeps (or finds) these embeddings."""
    key = identity_hash(
        {
            "embedder": embedder.identity(),
            "dataset": dataset_identity(data_dir),
            "split": split,
            "perturbation": dataclasses.asdict(perturbation),
        }
    )
    return Path(cache_root) / f"{embedder.name}-{split}-{key}"


def extract(
    embedder: Embedder,
    data_dir: str | Path,
    split: str,
    cache_root: str | Path,
    perturbation: Perturbation = CLEAN,
    progress: bool = True,
) -> Path:
    """Embed every window of every clip of `split` (see the module docstring); returns
    the folder. Resumes a partial extraction; returns a complete one at once."""
    out = cache_dir(embedder, data_dir, split, cache_root, perturbation)
    if (out / COMPLETE).is_file():
        return out
    manifest = read_manifest(str(data_dir))
    if split not in manifest["splits"]:
        raise ConfigError(f"{data_dir} has no split {split!r}; it has {sorted(manifest['splits'])}")
    if embedder.sample_rate is not None and embedder.sample_rate != manifest["sample_rate"]:
        raise ConfigError(
            f"{embedder.name} takes {embedder.sample_rate} Hz audio but {data_dir} is at "
            f"{manifest['sample_rate']} Hz: prepare the dataset at {embedder.sample_rate} Hz"
        )
    index = split_index(data_dir, split)
    if not index:
        raise ConfigError(f"split {split!r} of {data_dir} has no clips: nothing to embed")
    window = embedder.window_samples
    per_clip = np.asarray([max(1, round(c["seconds"] * manifest["sample_rate"]) // window) for c in index])
    starts = np.concatenate([[0], np.cumsum(per_clip)])
    out.mkdir(parents=True, exist_ok=True)
    records.write_json_atomic(
        out / "info.json",
        {"embedder": embedder.identity(), "name": embedder.name, "data_dir": str(data_dir), "split": split,
         "perturbation": dataclasses.asdict(perturbation), "window_samples": window,
         "sample_rate": manifest["sample_rate"]},
    )  # fmt: skip
    np.save(out / "window_clip.npy", np.repeat(np.arange(len(index)), per_clip))
    records.write_json_atomic(out / "clip_ids.json", [c["id"] for c in index])
    progress_file = out / "progress.json"
    done = json.loads(progress_file.read_text())["clips"] if progress_file.is_file() else 0
    matrix = None
    if done:
        matrix = np.load(out / "window_embeddings.npy", mmap_mode="r+")
    source = open_split(str(data_dir), split)
    bar = tqdm(total=len(index), initial=done, desc=f"embed {embedder.name} {split}", disable=not progress)
    clip = done
    while clip < len(index):
        group, first = [], clip
        while clip < len(index) and sum(len(g) for g in group) < _GROUP_WINDOWS:
            audio = records.decode_audio(source[clip])
            if not perturbation.is_clean:
                audio = perturbation.apply(audio, clip)
            group.append(windows(audio, window))
            clip += 1
        emb = embedder.embed(np.concatenate(group))
        if not np.isfinite(emb).all():
            raise ValueError(f"{embedder.name} gave NaN/inf embeddings on {split} clips {first}..{clip - 1}")
        if matrix is None:
            # Written in place as the split is embedded: the whole split is never in memory.
            matrix = np.lib.format.open_memmap(
                out / "window_embeddings.npy",
                mode="w+",
                dtype=np.float32,
                shape=(int(starts[-1]), emb.shape[1]),
            )
        matrix[starts[first] : starts[clip]] = emb
        matrix.flush()
        records.write_json_atomic(progress_file, {"clips": clip})
        bar.update(clip - first)
    bar.close()
    del matrix
    records.write_json_atomic(out / COMPLETE, {"clips": len(index), "windows": int(starts[-1])})
    os.remove(progress_file)
    return out


def load(folder: str | Path) -> dict[str, Any]:
    """An extracted split: window_embeddings (memory-mapped), window_clip, clip_ids."""
    folder = Path(folder)
    return {
        "window_embeddings": np.load(folder / "window_embeddings.npy", mmap_mode="r"),
        "window_clip": np.load(folder / "window_clip.npy"),
        "clip_ids": json.loads((folder / "clip_ids.json").read_text()),
    }


def clip_mean(window_embeddings: np.ndarray, window_clip: np.ndarray, n_clips: int) -> np.ndarray:
    """[n_clips, D]: the mean of each clip's window embeddings (read in blocks, so a
    memory-mapped matrix is never loaded whole)."""
    sums = np.zeros((n_clips, window_embeddings.shape[1]))
    for lo in range(0, window_clip.shape[0], 65536):
        np.add.at(sums, window_clip[lo : lo + 65536], window_embeddings[lo : lo + 65536])
    return (sums / np.maximum(np.bincount(window_clip, minlength=n_clips), 1)[:, None]).astype(np.float32)


def split_labels(data_dir: str | Path, split: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Clip ids and the labels of every manifest task, in record order (from the cached
    header index: no audio is read)."""
    manifest = read_manifest(str(data_dir))
    index = split_index(data_dir, split)
    labels = {}
    for name, task in manifest["tasks"].items():
        values = [encode_label(task, c["labels"][name]) for c in index]
        labels[name] = np.stack(values) if values else np.zeros((0,))
    return [c["id"] for c in index], labels
