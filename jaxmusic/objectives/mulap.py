"""`objective.name = "mulap"`: weak language supervision (MuLaP, Manco et al., ICASSP 2022).

An audio backbone (any registered encoder; its `frames` are used) and the caption's
token embeddings enter one joint transformer, as a sequence of projected audio frames
followed by the caption's tokens, each with a position and a modality embedding. Two
proxy tasks train everything from noisy captions alone:

- masked language modelling: 15% of the caption's word tokens are chosen (BERT's
  80/10/10: [MASK], a random token, unchanged) and predicted from the joint sequence,
  so the caption must be completed from the audio; only chosen positions count;
- audio-text matching: a binary head on the joint [CLS] output tells matched pairs
  from mismatched ones, as many of each. Half the clips of the global batch are paired
  with another caption of the batch, and the captions of the other half with another
  clip, drawn in proportion to their similarity (softmax of the cosine of mean audio
  frames and mean token embeddings, without gradient), so the negatives are the
  batch's hard ones (as ALBEF draws them).

An optional SimCLR term on two crops of each clip adds audio-only contrast. After
training, the audio backbone alone is what `embed` and the probes see; retrieval and
zero-shot tagging score every (clip, text) pair with the matching head.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxmusic.config import ConfigError
from jaxmusic.data.pipeline import Inputs
from jaxmusic.data.tokenizer import MASK, CaptionTokenizer
from jaxmusic.models.heads import Projector
from jaxmusic.models.registry import COMPUTE_DTYPES, build_encoder
from jaxmusic.models.transformer import Transformer, masked_mean
from jaxmusic.objectives.base import FlaxObjective, Metrics, Variables, example_batch
from jaxmusic.objectives.contrastive import nt_xent
from jaxmusic.objectives.language import text_inputs, tokenizer_assets, tokenizer_config, unit

NUM_SPECIAL = MASK + 1  # ids below this are special tokens, never drawn as random replacements


def default_config() -> ml_collections.ConfigDict:
    """`objective.mulap`: the joint transformer, the proxy tasks and their weights."""
    c = ml_collections.ConfigDict()
    c.width = 256
    c.depth = 4
    c.heads = 4
    c.mlp_dim = 1024
    c.dropout = 0.1
    c.max_audio_frames = 256  # the joint transformer's audio position table
    c.mlm_probability = 0.15
    c.mlm_weight = 1.0
    c.atm_weight = 1.0
    c.hard_negatives = True  # False: negatives drawn uniformly from the batch
    c.simclr_weight = 0.0
    c.simclr_temperature = 0.5
    c.projector_dims = (512, 128)
    c.tokenizer = tokenizer_config()
    return c


def mask_tokens(
    ids: jax.Array, mask: jax.Array, rng: jax.Array, probability: float, vocab_size: int
) -> tuple[jax.Array, jax.Array]:
    """BERT's masking of caption tokens: returns (ids with the chosen positions replaced,
    chosen [B, L] bool). Special tokens and padding are never chosen; of the chosen, 80%
    become [MASK], 10% a random word token and 10% stay as they are. Positions not
    chosen are returned unchanged."""
    choose, how, rand = jax.random.split(rng, 3)
    word = mask & (ids >= NUM_SPECIAL)
    chosen = word & (jax.random.uniform(choose, ids.shape) < probability)
    u = jax.random.uniform(how, ids.shape)
    random_ids = jax.random.randint(rand, ids.shape, NUM_SPECIAL, vocab_size)
    replaced = jnp.where(u < 0.8, MASK, jnp.where(u < 0.9, random_ids, ids))
    return jnp.where(chosen, replaced, ids).astype(ids.dtype), chosen


def mlm_loss(logits: jax.Array, targets: jax.Array, chosen: jax.Array) -> jax.Array:
    """Cross-entropy of the original tokens at the chosen positions only (0 if none)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    return jnp.sum(ce * chosen) / jnp.maximum(jnp.sum(chosen), 1)


def atm_loss(logits: jax.Array, matched: jax.Array) -> jax.Array:
    """Binary cross-entropy of the matching head's logits against matched (1) / not (0)."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), matched))


def draw_negatives(similarity: jax.Array, rng: jax.Array, hard: bool) -> jax.Array:
    """For each row i of a [B, B] similarity, another column j != i: drawn with
    probability softmax(similarity[i]) over j != i (hard) or uniformly."""
    b = similarity.shape[0]
    logits = similarity if hard else jnp.zeros_like(similarity)
    logits = jnp.where(jnp.eye(b, dtype=bool), -jnp.inf, logits)
    return jax.random.categorical(rng, logits, axis=-1)


class MuLaPModel(nn.Module):
    """Audio backbone + token embeddings + joint transformer + MLM and matching heads."""

    encoder: nn.Module
    vocab_size: int
    width: int
    depth: int
    heads: int
    mlp_dim: int
    dropout: float
    max_audio_frames: int
    max_tokens: int
    projector_dims: tuple[int, ...] = ()
    dtype: Any = jnp.float32
    mlm_probability: float = 0.15
    hard_negatives: bool = True

    def setup(self) -> None:
        self.audio_in = nn.Dense(self.width, name="audio_in")
        self.token_embed = nn.Embed(self.vocab_size, self.width, name="token_embed")
        self.modality = self.param("modality", nn.initializers.normal(0.02), (2, self.width))
        # One learned position table: audio frames at 0.., caption tokens after max_audio_frames.
        self.joint = Transformer(
            depth=self.depth, width=self.width, heads=self.heads, mlp_dim=self.mlp_dim,
            dropout=self.dropout, attention_dropout=self.dropout, positions="learned",
            max_len=self.max_audio_frames + self.max_tokens, dtype=self.dtype,
        )  # fmt: skip
        self.mlm_transform = nn.Dense(self.width, name="mlm_transform")
        self.mlm_norm = nn.LayerNorm(name="mlm_norm")
        self.mlm_bias = self.param("mlm_bias", nn.initializers.zeros, (self.vocab_size,))
        self.atm_head = nn.Dense(1, name="atm_head")
        if self.projector_dims:
            self.projector = Projector(self.projector_dims)

    def audio_features(self, audio: jax.Array, train: bool = False) -> jax.Array:
        """Audio [B, samples] -> the backbone's frames projected into the joint width [B, T, W]."""
        return self.project(self.encoder(audio, train=train)["frames"])

    def project(self, frames: jax.Array) -> jax.Array:
        """Backbone frames [B, T, D] -> the joint width [B, T, W]."""
        if frames.shape[1] > self.max_audio_frames:
            raise ValueError(
                f"the encoder gives {frames.shape[1]} frames, more than objective.mulap.max_audio_frames="
                f"{self.max_audio_frames}: raise it"
            )
        return self.audio_in(frames)

    def text_features(self, ids: jax.Array) -> jax.Array:
        """Token ids [B, L] -> token embeddings [B, L, W]."""
        return self.token_embed(ids)

    def join(self, audio: jax.Array, text: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        """Joint transformer over [audio frames; caption tokens] -> the caption tokens' outputs [B, L, W]."""
        (b, ta), tt = audio.shape[:2], text.shape[1]
        x = jnp.concatenate([audio + self.modality[0], text + self.modality[1]], axis=1)
        positions = jnp.concatenate([jnp.arange(ta), self.max_audio_frames + jnp.arange(tt)])
        valid = jnp.concatenate([jnp.ones((b, ta), bool), mask], axis=1)
        h = self.joint(x, mask=valid, positions=jnp.broadcast_to(positions, (b, ta + tt)), train=train)
        return h[:, ta:]

    def match(self, audio: jax.Array, text: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        """Matching logits [B] of aligned rows of audio frames and token embeddings."""
        return self.atm_head(self.join(audio, text, mask, train)[:, 0])[:, 0].astype(jnp.float32)

    def mlm_logits(self, h: jax.Array) -> jax.Array:
        """Caption outputs [.., W] -> vocabulary logits, decoded with the token embedding (tied)."""
        h = self.mlm_norm(nn.gelu(self.mlm_transform(h)))
        return self.token_embed.attend(h) + self.mlm_bias

    def __call__(self, batch: dict[str, Any], train: bool) -> dict[str, jax.Array]:
        """Both proxy tasks' outputs; masking and negatives draw from the "masking" rng."""
        views = batch["audio"]
        b, v, t = views.shape
        out = self.encoder(views.reshape(b * v, t), train=train)
        frames = out["frames"].reshape(b, v, *out["frames"].shape[1:])[:, 0]
        audio = self.project(frames)
        ids, mask = batch["text"]["ids"], batch["text"]["mask"]
        text = self.token_embed(ids)
        rng = self.make_rng("masking") if self.has_rng("masking") else jax.random.PRNGKey(0)
        k_mask, k_neg_t, k_neg_a = jax.random.split(rng, 3)
        masked_ids, chosen = mask_tokens(ids, mask, k_mask, self.mlm_probability, self.vocab_size)
        logits = self.mlm_logits(self.join(audio, self.token_embed(masked_ids), mask, train))
        # Hard negatives by a similarity the proxy tasks shape but do not differentiate.
        sim = jax.lax.stop_gradient(unit(jnp.mean(audio, axis=1)) @ unit(masked_mean(text, mask)).T)
        neg_text = draw_negatives(sim, k_neg_t, self.hard_negatives)
        neg_audio = draw_negatives(sim.T, k_neg_a, self.hard_negatives)
        # B matched pairs and B mismatched ones: the first half of the clips with a hard
        # negative caption, the captions of the second half with a hard negative clip.
        first = (jnp.arange(b) < b // 2)[:, None, None]
        pair_audio = jnp.concatenate([audio, jnp.where(first, audio, audio[neg_audio])])
        pair_text = jnp.concatenate([text, jnp.where(first, text[neg_text], text)])
        pair_mask = jnp.concatenate([mask, jnp.where(first[..., 0], mask[neg_text], mask)])
        result = {
            "mlm_logits": logits,
            "mlm_targets": ids,
            "mlm_chosen": chosen,
            "atm_logits": self.match(pair_audio, pair_text, pair_mask, train),
            "atm_matched": jnp.repeat(jnp.array([1.0, 0.0]), b),
        }
        if self.projector_dims:
            result["views"] = self.projector(out["pooled"]).reshape(b, v, -1)
        return result


@dataclasses.dataclass(frozen=True)
class MuLaPObjective(FlaxObjective):
    """Masked language modelling + audio-text matching (+ optional SimCLR)."""

    tokenizer: CaptionTokenizer | None = None
    max_tokens: int = 0
    mlm_weight: float = 1.0
    atm_weight: float = 1.0
    simclr_weight: float = 0.0
    simclr_temperature: float = 0.5

    def init(self, rng: jax.Array, batch_spec: dict[str, Any]) -> Variables:
        """Variables for batches shaped like `batch_spec` (two examples: negatives need another)."""
        batch = jax.tree.map(lambda x: jnp.concatenate([x, x]), example_batch(batch_spec))
        return dict(self.model.init(rng, batch, train=False))

    def _losses(self, out: dict[str, jax.Array]) -> tuple[jax.Array, Metrics]:
        mlm = mlm_loss(out["mlm_logits"], out["mlm_targets"], out["mlm_chosen"])
        atm = atm_loss(out["atm_logits"], out["atm_matched"])
        chosen = out["mlm_chosen"]
        right = jnp.argmax(out["mlm_logits"], -1) == out["mlm_targets"]
        metrics = {
            "mlm_loss": mlm,
            "atm_loss": atm,
            "mlm_accuracy": jnp.sum(right * chosen) / jnp.maximum(jnp.sum(chosen), 1),
            "atm_accuracy": jnp.mean((out["atm_logits"] > 0) == (out["atm_matched"] > 0.5)),
        }
        loss = self.mlm_weight * mlm + self.atm_weight * atm
        if self.simclr_weight:
            simclr = nt_xent(out["views"][:, 0], out["views"][:, 1], self.simclr_temperature)
            metrics["simclr_loss"] = simclr
            loss = loss + self.simclr_weight * simclr
        return loss, {"loss": loss, **metrics}

    def loss(
        self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, tuple[Variables, Metrics]]:
        """Training loss; returns (loss, (new mutable collections, metrics))."""
        dropout, specaugment, masking = jax.random.split(rng, 3)
        out, updates = self.model.apply(
            {"params": params, **mutable}, batch, train=True, mutable=list(mutable),
            rngs={"dropout": dropout, "specaugment": specaugment, "masking": masking},
        )  # fmt: skip
        loss, metrics = self._losses(out)
        return loss, (dict(updates), metrics)

    def evaluate(self, params: Any, mutable: Variables, batch: dict[str, Any], rng: jax.Array) -> Metrics:
        """Both proxy losses and accuracies, with the same masks and negatives at every evaluation."""
        out = self.model.apply({"params": params, **mutable}, batch, train=False, rngs={"masking": rng})
        return self._losses(out)[1]

    def assets(self) -> dict[str, bytes]:
        """The tokenizer, kept beside the checkpoint."""
        return tokenizer_assets(self.inputs.text)

    def audio_features(self, variables: Variables, audio: jax.Array) -> jax.Array:
        """Projected backbone frames [B, T, W] of clips [B, samples]."""
        return self.model.apply(variables, audio, method=MuLaPModel.audio_features)

    def text_features(self, variables: Variables, ids: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
        """Token embeddings and mask of texts [B, L]."""
        return {"tokens": self.model.apply(variables, ids, method=MuLaPModel.text_features), "mask": mask}

    def pair_scores(self, variables: Variables, audio: jax.Array, text: dict[str, jax.Array]) -> jax.Array:
        """The matching head's logit for every (clip, text) pair, [Na, Nt], one clip at a time."""
        nt = text["tokens"].shape[0]

        def one_clip(frames: jax.Array) -> jax.Array:
            clip = jnp.broadcast_to(frames, (nt, *frames.shape))
            return self.model.apply(variables, clip, text["tokens"], text["mask"], method=MuLaPModel.match)

        return jax.lax.map(one_clip, audio)


def build(
    config: ml_collections.ConfigDict, manifest: dict[str, Any], workdir: Path | None = None
) -> MuLaPObjective:
    """MuLaP around the config's audio encoder; the tokenizer from `workdir` when the run
    has one, else trained on the training split's captions."""
    del manifest
    c = config.objective.mulap
    if not 0 < c.mlm_probability < 1:
        raise ConfigError(f"objective.mulap.mlm_probability must be in (0, 1), got {c.mlm_probability}")
    if min(c.mlm_weight, c.atm_weight, c.simclr_weight) < 0 or not c.mlm_weight + c.atm_weight > 0:
        raise ConfigError("objective.mulap weights must be >= 0, with mlm_weight + atm_weight > 0")
    if c.width % c.heads:
        raise ConfigError(f"objective.mulap.width {c.width} is not a multiple of heads {c.heads}")
    if config.batch_size < 2:
        raise ConfigError("objective.mulap needs batch_size >= 2: negatives come from the batch")
    text = text_inputs(config, "mulap", workdir)
    model = MuLaPModel(
        encoder=build_encoder(config.model),
        vocab_size=text.tokenizer.vocab_size,
        width=int(c.width), depth=int(c.depth), heads=int(c.heads), mlp_dim=int(c.mlp_dim),
        dropout=float(c.dropout), max_audio_frames=int(c.max_audio_frames), max_tokens=text.max_tokens,
        projector_dims=tuple(c.projector_dims) if c.simclr_weight else (),
        dtype=COMPUTE_DTYPES.get(config.model.compute_dtype, jnp.float32),
        mlm_probability=float(c.mlm_probability), hard_negatives=bool(c.hard_negatives),
    )  # fmt: skip
    return MuLaPObjective(
        model=model,
        inputs=Inputs(crop="independent", num_views=2 if c.simclr_weight else 1, text=text),
        accumulable=False,  # negatives from the batch
        tokenizer=text.tokenizer,
        max_tokens=text.max_tokens,
        mlm_weight=float(c.mlm_weight),
        atm_weight=float(c.atm_weight),
        simclr_weight=float(c.simclr_weight),
        simclr_temperature=float(c.simclr_temperature),
    )
