"""Embedders: anything that turns windows of audio into vectors, behind one interface.

An embedder has a `name`, the `window_samples` it takes, the `sample_rate` it expects
(None: any), an `identity()` (everything that determines its output: the cache key)
and `embed(int16 [N, window_samples]) -> float32 [N, D]`. Evaluation needs nothing
else, so a trained run, a converted checkpoint, an encoder at random initialisation
and handcrafted features (evaluate/handcrafted.py) are measured the same way.
Embeddings computed by another tool come in as files instead (evaluate/external.py).

Encoder embedders give one of three outputs (`layer`): `pooled` (the encoder's
embedding), `frames` (its frame sequence, summarised by the mean and standard
deviation over time, as the few-shot paper pools features), or the output of a named
submodule (e.g. `Conv_3`, `ResBlock_2`; see `layer_names`), averaged over every axis
but the channels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmusic.config import ConfigError, base_config
from jaxmusic.data.records import RecordError
from jaxmusic.data.sources import read_manifest
from jaxmusic.models.registry import ENCODERS, build_encoder
from jaxmusic.preprocess import dequantize
from jaxmusic.train import checkpoint


class Embedder(Protocol):
    name: str
    window_samples: int
    sample_rate: int | None

    def identity(self) -> dict[str, Any]: ...

    def embed(self, audio: np.ndarray) -> np.ndarray: ...


def identity_hash(identity: dict[str, Any]) -> str:
    """A short stable hash of an identity dict (the embedding cache key)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def workdir_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """The full config a run (or a conversion) saved in `workdir`, on today's schema."""
    config = base_config()
    try:
        config.update(checkpoint.saved_config(workdir))
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{workdir}/config.json does not fit this jaxmusic's config schema: {e}") from None
    return config


def trained_sample_rate(config: ml_collections.ConfigDict) -> int | None:
    """The sample rate an encoder was trained at, where the config records it: its
    log-mel frontend's; the manifest of the data it trained on; the built-in synthetic
    music's when it names no data. None when that manifest cannot be read."""
    if ENCODERS[config.model.name].logmel:
        return int(config.model.logmel.sample_rate)
    if not config.data.dir:
        return int(config.synth.sample_rate)
    try:
        return int(read_manifest(config.data.dir)["sample_rate"])
    except (OSError, RecordError):
        return None


def _summarise(x: jax.Array) -> jax.Array:
    """[B, ..., C] -> [B, C]: the mean over every axis between batch and channels."""
    return x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)


def layer_names(config: ml_collections.ConfigDict) -> list[str]:
    """Submodule paths (`Block_0/Conv_0`, ...) whose outputs `layer=` can name."""
    encoder = build_encoder(config.model)
    audio = jnp.zeros((1, config.data.crop_samples))
    variables = jax.eval_shape(lambda: encoder.init(jax.random.PRNGKey(0), audio, train=False))
    _, state = jax.eval_shape(
        lambda v: encoder.apply(v, audio, train=False, capture_intermediates=True, mutable=["intermediates"]),
        variables,
    )
    names: list[str] = []

    def walk(tree: Any, prefix: str) -> None:
        for key, value in tree.items():
            if key == "__call__":
                if prefix:
                    names.append(prefix)
            elif isinstance(value, dict):
                walk(value, f"{prefix}/{key}" if prefix else key)

    walk(jax.tree.map(lambda x: x, dict(state["intermediates"])), "")
    return names


@dataclasses.dataclass
class EncoderEmbedder:
    """A jaxmusic encoder with given variables (trained, converted or random)."""

    config: ml_collections.ConfigDict
    variables: dict[str, Any]
    origin: dict[str, Any]  # where the variables came from (part of the identity)
    layer: str = "pooled"
    batch_size: int = 64
    name: str = "encoder"

    def __post_init__(self) -> None:
        self.window_samples = int(self.config.data.crop_samples)
        self.sample_rate = trained_sample_rate(self.config)
        encoder = build_encoder(self.config.model)
        layer = self.layer
        if layer not in ("pooled", "frames"):
            known = layer_names(self.config)
            if layer not in known:
                raise ConfigError(
                    f"layer {layer!r} is not a submodule of the encoder; it has {', '.join(known)}"
                )
        path = tuple(layer.split("/"))

        def forward(variables: dict[str, Any], audio: jax.Array) -> jax.Array:
            x = dequantize(audio)
            if layer in ("pooled", "frames"):
                out = encoder.apply(variables, x, train=False)
                if layer == "pooled":
                    return out["pooled"]
                frames = out["frames"].astype(jnp.float32)
                return jnp.concatenate([frames.mean(1), frames.std(1)], axis=-1)
            _, state = encoder.apply(
                variables,
                x,
                train=False,
                capture_intermediates=lambda m, _: m.path == path,
                mutable=["intermediates"],
            )
            tree = state["intermediates"]
            for key in path:
                tree = tree[key]
            return _summarise(tree["__call__"][0].astype(jnp.float32))

        self._forward = jax.jit(forward)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": "encoder",
            "origin": self.origin,
            "model": self.config.model.to_dict(),
            "window_samples": self.window_samples,
            "layer": self.layer,
        }

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """int16 [N, window_samples] -> float32 [N, D], in batches of one compiled shape."""
        audio = np.asarray(audio)
        if audio.ndim != 2 or audio.shape[1] != self.window_samples:
            raise ValueError(f"{self.name} takes int16 [N, {self.window_samples}], got {audio.shape}")
        out = []
        for lo in range(0, audio.shape[0], self.batch_size):
            chunk = audio[lo : lo + self.batch_size]
            padded = np.zeros((self.batch_size, self.window_samples), np.int16)
            padded[: len(chunk)] = chunk
            out.append(np.asarray(self._forward(self.variables, padded))[: len(chunk)])
        if not out:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(out).astype(np.float32)


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


def from_checkpoint(
    workdir: str | Path, layer: str = "pooled", batch_size: int = 64, name: str = ""
) -> EncoderEmbedder:
    """The encoder of the newest checkpoint in a training (or `convert`) workdir, restored
    without optimizer state or heads, with the config saved beside it."""
    config = workdir_config(workdir)
    variables, origin = load_encoder_variables(config, workdir)
    return EncoderEmbedder(
        config, variables, {"checkpoint": origin}, layer, batch_size, name or Path(workdir).name
    )


def random_init(
    config: ml_collections.ConfigDict,
    seed: int = 0,
    layer: str = "pooled",
    batch_size: int = 64,
    name: str = "",
) -> EncoderEmbedder:
    """`config.model` at random initialisation from `seed`: the untrained reference."""
    variables, origin = load_encoder_variables(config, None, seed)
    return EncoderEmbedder(
        config, variables, {"random_init": origin}, layer, batch_size, name or f"random-init-{seed}"
    )
