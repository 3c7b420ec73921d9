"""The HEAR benchmark's embedding API for any jaxmusic encoder.

    from jaxmusic import hear
    model = hear.load_model("WORKDIR")  # a training workdir or a `jaxmusic convert` folder
    scene = hear.get_scene_embeddings(audio, model)  # [n_sounds, D]
    frames, ms = hear.get_timestamp_embeddings(audio, model)  # [n_sounds, n, D], [n_sounds, n]

`audio` is mono float32 in [-1, 1] at `model.sample_rate`, [n_sounds, n_samples].
HEAR's tools (hear-validator, hear-eval-kit) accept only a `torch.nn.Module` model
and torch tensors, so where torch is importable `load_model` returns one: a module
without torch parameters whose computation is the JAX encoder's, and the two
functions return float32 tensors on the audio's device. Without torch it returns a
plain `HearModel`; numpy arrays in give numpy arrays out either way.

The encoder sees windows of its training crop (`data.crop_samples`) and gives one
pooled embedding per window:

- Scene embedding: the mean over the clip's consecutive whole windows, the remainder
  dropped and a clip shorter than one window zero-padded to one, exactly as
  `jaxmusic embed` makes its clip embeddings.
- Timestamp embeddings: timestamps every `hop_ms` (default 250 ms, set with
  `load_model(path, hop_ms=...)`) from 0 ms to the clip's end, each the pooled
  embedding of the window centred on it in the clip zero-padded by half a window on
  each side. Each centre is the sample nearest `k * hop_ms`, rounded per timestamp
  rather than as one rounded hop, so a hop that is not a whole number of samples
  does not drift over long audio. HEAR suggests hops of 50 ms or less for its
  transcription tasks; each timestamp costs one encoder pass.

Windows of every clip length go through one jitted apply of a fixed batch shape
(the last batch zero-padded), so a new clip length never recompiles the encoder.
The sample rate is the training data's: the manifest of the saved config's
`data.dir`, or `synth.sample_rate` when `data.dir` is empty (the built-in synthetic
music, and what a converted checkpoint's config describes).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxmusic.data.records import MANIFEST
from jaxmusic.evaluate.embedders import load_encoder_variables, trained_sample_rate, workdir_config
from jaxmusic.models.registry import build_encoder, check_input

DEFAULT_HOP_MS = 250.0


class HearModel:
    """A jaxmusic encoder with HEAR's attributes: `sample_rate`, `scene_embedding_size`,
    `timestamp_embedding_size`; plus `window_samples`, `hop_ms` and `batch_size`."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        variables: dict[str, Any],
        sample_rate: int,
        hop_ms: float,
        batch_size: int,
    ) -> None:
        encoder = build_encoder(config.model)
        self.sample_rate = int(sample_rate)
        self.window_samples = int(config.data.crop_samples)
        self.hop_ms = float(hop_ms)
        self.batch_size = int(batch_size)
        self._variables = jax.device_put(variables)
        self._apply = jax.jit(lambda v, x: encoder.apply(v, x, train=False)["pooled"])
        pooled = jax.eval_shape(self._apply, self._variables, self._batch())
        self.scene_embedding_size = int(pooled.shape[-1])
        self.timestamp_embedding_size = self.scene_embedding_size

    def _batch(self) -> np.ndarray:
        return np.zeros((self.batch_size, self.window_samples), np.float32)

    def window_embeddings(self, padded: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Pooled embeddings [n_sounds, len(starts), D] of the windows of `padded`
        [n_sounds, L] that begin at `starts`."""
        view = np.lib.stride_tricks.sliding_window_view(padded, self.window_samples, axis=1)
        total = padded.shape[0] * len(starts)
        sounds, which = np.divmod(np.arange(total), len(starts))
        out = np.empty((total, self.scene_embedding_size), np.float32)
        # Windows are copied one batch at a time: overlapping windows of a long clip
        # would otherwise take many times the clip's memory.
        for lo in range(0, total, self.batch_size):
            chunk = view[sounds[lo : lo + self.batch_size], starts[which[lo : lo + self.batch_size]]]
            batch = self._batch()
            batch[: len(chunk)] = chunk
            out[lo : lo + len(chunk)] = np.asarray(self._apply(self._variables, batch))[: len(chunk)]
        return out.reshape(padded.shape[0], len(starts), -1)


@functools.cache
def _torch_model_class() -> type:
    import torch

    class TorchHearModel(torch.nn.Module):
        """HEAR's torch face of a `HearModel` (in `.model`): no torch parameters, so
        `.to(device)` moves nothing; the JAX encoder runs on JAX's own device."""

        def __init__(self, model: HearModel) -> None:
            super().__init__()
            self.model = model
            self.sample_rate = model.sample_rate
            self.scene_embedding_size = model.scene_embedding_size
            self.timestamp_embedding_size = model.timestamp_embedding_size

    return TorchHearModel


def _sample_rate(config: ml_collections.ConfigDict) -> int:
    rate = trained_sample_rate(config)
    if rate is None:
        raise ValueError(
            f"the encoder's sample rate is its training data's, recorded in {config.data.dir}/{MANIFEST}, "
            f"which cannot be read: restore that dataset's {MANIFEST} there"
        )
    return rate


def load_model(
    model_file_path: str = "", *, hop_ms: float = DEFAULT_HOP_MS, batch_size: int | None = None
) -> Any:
    """The encoder of a jaxmusic training workdir (its newest checkpoint) or converted
    checkpoint folder, as a HEAR model: a `torch.nn.Module` where torch is importable,
    else a `HearModel`. `batch_size` (windows per encoder call) defaults to the saved
    config's `embed.batch_size`."""
    if not model_file_path:
        raise ValueError(
            "load_model needs model_file_path: a jaxmusic training workdir or converted checkpoint"
        )
    if hop_ms <= 0:
        raise ValueError(f"hop_ms must be positive, got {hop_ms}")
    workdir = Path(model_file_path)
    if not (workdir / "checkpoints").is_dir():
        raise FileNotFoundError(f"{workdir} holds no jaxmusic checkpoints (no {workdir / 'checkpoints'})")
    config = workdir_config(workdir)
    sample_rate = _sample_rate(config)
    check_input(config.model, config.data.crop_samples, sample_rate)
    variables, _ = load_encoder_variables(config, workdir)
    batch_size = config.embed.batch_size if batch_size is None else batch_size
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    model = HearModel(config, variables, sample_rate, hop_ms, batch_size)
    try:
        return _torch_model_class()(model)
    except ImportError:
        return model


def _is_torch(x: Any) -> bool:
    # A tensor exists only if torch was imported, so this never imports it.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _numpy_audio(audio: Any) -> np.ndarray:
    array = audio.detach().cpu().numpy() if _is_torch(audio) else audio
    array = np.asarray(array, np.float32)
    if array.ndim != 2:
        raise ValueError(f"audio must be [n_sounds, n_samples], got shape {array.shape}")
    return array


def _like(array: np.ndarray, audio: Any) -> Any:
    if not _is_torch(audio):
        return array
    import torch

    return torch.from_numpy(array).to(audio.device)


def _hear_model(model: Any) -> HearModel:
    return model if isinstance(model, HearModel) else model.model


def get_scene_embeddings(audio: Any, model: Any) -> Any:
    """[n_sounds, scene_embedding_size] float32: the mean of each clip's whole-window
    pooled embeddings (see the module docstring)."""
    m = _hear_model(model)
    x = _numpy_audio(audio)
    windows = max(1, x.shape[1] // m.window_samples)
    padded = np.zeros((x.shape[0], windows * m.window_samples), np.float32)
    take = min(x.shape[1], padded.shape[1])
    padded[:, :take] = x[:, :take]
    starts = np.arange(windows) * m.window_samples
    return _like(m.window_embeddings(padded, starts).mean(axis=1), audio)


def get_timestamp_embeddings(audio: Any, model: Any) -> tuple[Any, Any]:
    """(embeddings [n_sounds, n_timestamps, timestamp_embedding_size] float32,
    timestamps [n_sounds, n_timestamps] float32 in ms): one every `model.hop_ms` from
    0 ms, each the pooled embedding of the window centred on it."""
    m = _hear_model(model)
    x = _numpy_audio(audio)
    samples_per_ms = m.sample_rate / 1000.0
    # Every timestamp up to the clip's end; the epsilon keeps an exact multiple.
    count = int(np.floor(x.shape[1] / (m.hop_ms * samples_per_ms) + 1e-9)) + 1
    times_ms = np.arange(count) * m.hop_ms
    centres = np.rint(times_ms * samples_per_ms).astype(np.int64)
    half = m.window_samples // 2
    # Padded so the window centred on sample c starts at index c.
    padded = np.pad(x, ((0, 0), (half, m.window_samples - half)))
    embeddings = m.window_embeddings(padded, centres)
    timestamps = np.broadcast_to(times_ms.astype(np.float32), (x.shape[0], count)).copy()
    return _like(embeddings, audio), _like(timestamps, audio)
