"""Encoders by name: the one place that maps `config.model` to a Flax module.

Each encoder module defines `default_config()` (its own section, `model.<name>`),
`from_config(model, dtype)` and `input_lengths(model) -> (minimum, multiple)` in
samples. Every encoder takes mono audio [batch, samples] in [-1, 1] (its frontend,
raw or log-mel, is inside it) and returns `{"pooled": [B, D], "frames": [B, T, D]}`
in float32, whatever its compute dtype. Adding an encoder is one module and one line
in `ENCODERS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from jaxmusic.config import ConfigError
from jaxmusic.models import fcn, frontend, musicnn, samplecnn, shortchunk, spectrogram_transformer


@dataclasses.dataclass(frozen=True)
class EncoderDef:
    defaults: Callable[[], ml_collections.ConfigDict]
    from_config: Callable[[ml_collections.ConfigDict, Any], nn.Module]
    input_lengths: Callable[[ml_collections.ConfigDict], tuple[int, int]]
    logmel: bool  # its frontend is `model.logmel`, whose sample rate must be the data's


def _def(module: Any, logmel: bool = True) -> EncoderDef:
    return EncoderDef(module.default_config, module.from_config, module.input_lengths, logmel)


ENCODERS: dict[str, EncoderDef] = {
    "samplecnn": _def(samplecnn, logmel=False),
    "fcn": _def(fcn),
    "musicnn": _def(musicnn),
    "shortchunk_cnn": _def(shortchunk.CNN),
    "shortchunk_resnet": _def(shortchunk.RESNET),
    "spectrogram_transformer": _def(spectrogram_transformer),
}

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _entry(model: ml_collections.ConfigDict) -> EncoderDef:
    if model.name not in ENCODERS:
        raise ValueError(f"unknown model.name '{model.name}' (known: {', '.join(ENCODERS)})")
    return ENCODERS[model.name]


def build_encoder(model: ml_collections.ConfigDict) -> nn.Module:
    """The encoder named by `model.name`, configured by `model.<name>` (and `model.logmel`)."""
    if model.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"model.compute_dtype must be one of {list(COMPUTE_DTYPES)}, got '{model.compute_dtype}'"
        )
    return _entry(model).from_config(model, COMPUTE_DTYPES[model.compute_dtype])


def input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, multiple): the input lengths in samples the configured encoder takes."""
    return _entry(model).input_lengths(model)


def check_input(model: ml_collections.ConfigDict, crop_samples: int, sample_rate: int) -> None:
    """Refuse, in one line, windows the encoder cannot take or audio at another sample rate."""
    try:
        minimum, multiple = input_lengths(model)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if crop_samples < minimum or crop_samples % multiple:
        fix = max(minimum, crop_samples // multiple * multiple)
        raise ConfigError(
            f"data.crop_samples={crop_samples} does not suit model.name={model.name}: it takes "
            f"multiples of {multiple} samples from {minimum} (e.g. --config.data.crop_samples={fix})"
        )
    if ENCODERS[model.name].logmel and model.logmel.sample_rate != sample_rate:
        raise ConfigError(
            f"model.logmel.sample_rate={model.logmel.sample_rate} but the dataset is at {sample_rate} Hz: "
            f"set --config.model.logmel.sample_rate={sample_rate} or prepare the data at "
            f"{model.logmel.sample_rate} Hz"
        )


def model_config() -> ml_collections.ConfigDict:
    """The `model` section of the schema: the shared keys plus every encoder's own section."""
    c = ml_collections.ConfigDict()
    c.name = "samplecnn"
    c.compute_dtype = "float32"  # or "bfloat16": bf16 compute, float32 parameters
    c.logmel = frontend.default_config()  # shared by every log-mel encoder
    for name, entry in ENCODERS.items():
        c[name] = entry.defaults()
    return c
