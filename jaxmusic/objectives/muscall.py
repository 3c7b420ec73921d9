"""`objective.name = "muscall"`: a dual encoder of audio and captions (MusCALL-style).

The audio encoder (any registered one) and a text transformer trained from scratch
each end in a linear projection into one joint space; the loss is CLIP's symmetric
InfoNCE over the global batch with a learned temperature, initialised at 0.07 (a
logit scale of 1/0.07) and capped at a scale of 100 as in CLIP. An optional SimCLR
term on two crops of each clip (MusCALL: weight 0.3, temperature 0.5) is added to it.
After training, `embed` and the probes see the audio encoder alone; retrieval and
zero-shot tagging compare projected clips and captions by cosine similarity.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs
from jaxmusic.data.tokenizer import CaptionTokenizer
from jaxmusic.models import text_transformer
from jaxmusic.models.heads import Projector
from jaxmusic.models.registry import COMPUTE_DTYPES, build_encoder
from jaxmusic.objectives.base import FlaxObjective, Metrics, Variables
from jaxmusic.objectives.contrastive import nt_xent
from jaxmusic.objectives.language import info_nce, text_inputs, tokenizer_assets, tokenizer_config, unit


def default_config() -> ml_collections.ConfigDict:
    """`objective.muscall`: joint space, text tower, temperature and the SimCLR term."""
    c = ml_collections.ConfigDict()
    c.embed_dim = 256  # the joint audio-text space
    c.init_temperature = 0.07
    c.max_logit_scale = 100.0
    c.simclr_weight = 0.0  # MusCALL's optional audio-only term: 0.3
    c.simclr_temperature = 0.5
    c.projector_dims = (512, 128)  # the SimCLR term's projector
    c.tokenizer = tokenizer_config()
    c.text = text_transformer.default_config()
    return c


class DualEncoder(nn.Module):
    """Audio encoder + text transformer, each projected into the joint space."""

    encoder: nn.Module
    text: nn.Module
    embed_dim: int
    init_temperature: float
    projector_dims: tuple[int, ...] = ()  # () = no SimCLR term

    def setup(self) -> None:
        self.audio_proj = nn.Dense(self.embed_dim, use_bias=False)
        self.text_proj = nn.Dense(self.embed_dim, use_bias=False)
        self.logit_scale = self.param(
            "logit_scale", nn.initializers.constant(math.log(1 / self.init_temperature)), ()
        )
        if self.projector_dims:
            self.projector = Projector(self.projector_dims)

    def audio_features(self, audio: jax.Array, train: bool = False) -> jax.Array:
        """Audio [B, samples] -> joint-space embeddings [B, embed_dim] (not normalised)."""
        return self.audio_proj(self.encoder(audio, train=train)["pooled"])

    def text_features(self, ids: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        """Tokens [B, L] -> joint-space embeddings [B, embed_dim] (not normalised)."""
        return self.text_proj(self.text(ids, mask, train=train)["pooled"])

    def __call__(self, batch: dict[str, Any], train: bool) -> dict[str, jax.Array]:
        views = batch["audio"]
        b, v, t = views.shape
        h = self.encoder(views.reshape(b * v, t), train=train)["pooled"].reshape(b, v, -1)
        out = {
            "audio": self.audio_proj(h[:, 0]),
            "text": self.text_features(batch["text"]["ids"], batch["text"]["mask"], train),
            "log_scale": self.logit_scale,
        }
        if self.projector_dims:
            out["views"] = self.projector(h)
        return out


@dataclasses.dataclass(frozen=True)
class MusCALLObjective(FlaxObjective):
    """Symmetric InfoNCE between clips and their captions (+ optional SimCLR)."""

    tokenizer: CaptionTokenizer | None = None
    max_tokens: int = 0
    max_logit_scale: float = 100.0
    simclr_weight: float = 0.0
    simclr_temperature: float = 0.5

    def _losses(self, out: dict[str, jax.Array]) -> tuple[jax.Array, Metrics]:
        scale = jnp.minimum(jnp.exp(out["log_scale"]), self.max_logit_scale)
        clip, logits = info_nce(out["audio"], out["text"], scale)
        metrics = {
            "clip_loss": clip,
            "temperature": 1 / scale,
            "batch_r1": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(logits.shape[0])),
        }
        loss = clip
        if self.simclr_weight:
            simclr = nt_xent(out["views"][:, 0], out["views"][:, 1], self.simclr_temperature)
            metrics["simclr_loss"] = simclr
            loss = loss + self.simclr_weight * simclr
        return loss, {"loss": loss, **metrics}

    def loss(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, tuple[Variables, Metrics]]:
        """Training loss; returns (loss, (new mutable collections, metrics))."""
        out, mutable = self.apply_train(params, mutable, batch, rng)
        loss, metrics = self._losses(out)
        return loss, (mutable, metrics)

    def evaluate(self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array) -> Metrics:
        """The losses and in-batch recall@1 with running statistics and no updates."""
        return self._losses(self.apply_eval(params, mutable, batch))[1]

    def assets(self) -> dict[str, bytes]:
        """The tokenizer, kept beside the checkpoint."""
        return tokenizer_assets(self.inputs.text)

    def audio_features(self, variables: Variables, audio: jax.Array) -> jax.Array:
        """Unit-norm joint-space embeddings of clips [B, samples]."""
        return unit(self.model.apply(variables, audio, method=DualEncoder.audio_features))

    def text_features(self, variables: Variables, ids: jax.Array, mask: jax.Array) -> jax.Array:
        """Unit-norm joint-space embeddings of token sequences [B, L]."""
        return unit(self.model.apply(variables, ids, mask, method=DualEncoder.text_features))

    def pair_scores(self, variables: Variables, audio: jax.Array, text: jax.Array) -> jax.Array:
        """Cosine similarity of every clip with every text, [Na, Nt]."""
        del variables
        return audio @ text.T


def build(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> MusCALLObjective:
    """The dual encoder around the config's audio encoder; the tokenizer from `workdir`
    when the run has one, else trained on the training split's captions."""
    del manifest
    c = config.objective.muscall
    if not 0 < c.init_temperature < 1:
        raise ConfigError(f"objective.muscall.init_temperature must be in (0, 1), got {c.init_temperature}")
    if c.max_logit_scale < 1 / c.init_temperature:
        raise ConfigError("objective.muscall.max_logit_scale must be at least 1 / init_temperature")
    if c.simclr_weight < 0 or not c.simclr_temperature > 0:
        raise ConfigError("objective.muscall needs simclr_weight >= 0 and simclr_temperature > 0")
    if config.batch_size < 2:
        raise ConfigError("objective.muscall needs batch_size >= 2: the other captions are the negatives")
    if c.text.positions == "learned" and c.tokenizer.max_tokens > c.text.max_len:
        raise ConfigError(
            f"objective.muscall.tokenizer.max_tokens={c.tokenizer.max_tokens} exceeds the text tower's "
            f"position table (objective.muscall.text.max_len={c.text.max_len})"
        )
    text = text_inputs(config, "muscall", workdir)
    dtype = COMPUTE_DTYPES.get(config.model.compute_dtype, jnp.float32)
    model = DualEncoder(
        encoder=build_encoder(config.model),
        text=text_transformer.from_config(c.text, text.tokenizer.vocab_size, dtype),
        embed_dim=int(c.embed_dim),
        init_temperature=float(c.init_temperature),
        projector_dims=tuple(c.projector_dims) if c.simclr_weight else (),
    )
    views = 2 if c.simclr_weight else 1
    return MusCALLObjective(
        model=model,
        inputs=Inputs(crop="independent", num_views=views, text=text),
        accumulable=False,  # in-batch negatives
        tokenizer=text.tokenizer,
        max_tokens=text.max_tokens,
        max_logit_scale=float(c.max_logit_scale),
        simclr_weight=float(c.simclr_weight),
        simclr_temperature=float(c.simclr_temperature),
    )
