"""What the audio-text objectives share: the caption tokenizer, the contrastive loss over
audio-text pairs, and the interface that language evaluation (retrieval, zero-shot
tagging) uses to ask a trained model how well a clip and a text match.

The tokenizer is trained on the training split's captions when a run starts, and kept
in the workdir beside the checkpoint (`tokenizer.json`, written by the trainer as one of
the objective's `assets`); a resumed run, and every evaluation, reads it from there, so
token ids never change under a model even if the dataset's captions do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import TextInputs
from jaxmusic.data.tokenizer import MIN_VOCAB_SIZE, TOKENIZER_FILE, CaptionTokenizer, load_or_train

Variables = dict[str, Any]


class LanguageObjective(Protocol):
    """An objective whose model scores (clip, text) pairs: what `evaluate/language.py` needs."""

    tokenizer: CaptionTokenizer
    max_tokens: int

    def audio_features(self, variables: Variables, audio: jax.Array) -> Any:
        """float32 audio [B, samples] -> per-clip features (a pytree of [B, ...])."""
        ...

    def text_features(self, variables: Variables, ids: jax.Array, mask: jax.Array) -> Any:
        """Token ids and mask [B, L] -> per-text features (a pytree of [B, ...])."""
        ...

    def pair_scores(self, variables: Variables, audio: Any, text: Any) -> jax.Array:
        """[Na, Nt] match scores of every clip with every text (higher: a better match)."""
        ...


def tokenizer_config(vocab_size: int = 2048, max_tokens: int = 48) -> ml_collections.ConfigDict:
    """The `tokenizer` sub-section of a language objective."""
    c = ml_collections.ConfigDict()
    c.vocab_size = vocab_size  # subword vocabulary, special tokens included
    c.max_tokens = max_tokens  # caption length in tokens, [CLS] and [SEP] included
    return c


def text_inputs(config: ml_collections.ConfigDict, section: str, workdir: Path | None) -> TextInputs:
    """The caption tokens a language objective asks the pipeline for: the workdir's
    tokenizer when the run has one, else one trained on the training split's captions."""
    t = config.objective[section].tokenizer
    if t.vocab_size < MIN_VOCAB_SIZE:
        raise ConfigError(
            f"objective.{section}.tokenizer.vocab_size must be >= {MIN_VOCAB_SIZE} (the bytes and the "
            f"special tokens), got {t.vocab_size}"
        )
    if t.max_tokens < 3:
        raise ConfigError(f"objective.{section}.tokenizer.max_tokens must be >= 3, got {t.max_tokens}")
    try:
        tokenizer = load_or_train(workdir, config.data.dir, config.data.train_split, t.vocab_size)
    except ValueError as e:
        raise ConfigError(f"objective.{section}: {e}") from None
    return TextInputs(tokenizer, int(t.max_tokens))


def tokenizer_assets(inputs: TextInputs) -> dict[str, bytes]:
    """The tokenizer as the file the trainer keeps beside the checkpoint."""
    return {TOKENIZER_FILE: inputs.tokenizer.to_bytes()}


def unit(x: jax.Array) -> jax.Array:
    """Rows scaled to unit L2 norm (float32)."""
    x = x.astype(jnp.float32)
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def info_nce(audio: jax.Array, text: jax.Array, logit_scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Symmetric InfoNCE of CLIP over matched rows (audio[i], text[i]).

    `logit_scale` multiplies the cosine similarities (the inverse temperature). Returns
    (mean of the audio->text and text->audio cross-entropies, the [B, B] logits). Under a
    jit over a batch-sharded input the logits span the global batch: every clip's
    negatives are all the other captions on every device.
    """
    logits = logit_scale * unit(audio) @ unit(text).T
    labels = jnp.arange(logits.shape[0])
    a2t = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    t2a = optax.softmax_cross_entropy_with_integer_labels(logits.T, labels)
    return (jnp.mean(a2t) + jnp.mean(t2a)) / 2, logits
