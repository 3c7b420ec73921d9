"""The optimizer of a config's `optimizer` section: schedule, update rule, clipping, decay mask.

Schedule: linear warm-up from 0 to the peak learning rate over `warmup_steps`, then
constant or cosine decay to `end_learning_rate_factor` of the peak. Rules: Adam (CLMR),
AdamW, LARS (CLMR's large-batch alternative, as SimCLR) and SGD with momentum.
Weight decay spares biases and normalisation parameters (leaves with fewer than two
dimensions), the usual practice since decaying a BatchNorm scale only fights the
normalisation.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax

from jaxmusic.config import ConfigError

RULES = ("adam", "adamw", "lars", "sgd")


def schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """Learning rate as a function of the step."""
    peak, warmup = cfg.learning_rate, cfg.warmup_steps
    if cfg.schedule == "constant":
        after = optax.constant_schedule(peak)
    elif cfg.schedule == "cosine":
        steps = cfg.decay_steps or max(1, total_steps - warmup)
        after = optax.cosine_decay_schedule(peak, steps, alpha=cfg.end_learning_rate_factor)
    else:
        raise ConfigError(f"optimizer.schedule must be constant or cosine, got '{cfg.schedule}'")
    if not warmup:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def decay_mask(params: Any) -> Any:
    """True for the leaves weight decay applies to: kernels and embeddings (ndim >= 2)."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(
    cfg: ml_collections.ConfigDict, total_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The update rule (with clipping in front) and its learning-rate schedule."""
    check(cfg)
    lr = schedule(cfg, total_steps)
    # A constant rate stays a number, so the optimizer state holds no step counter.
    rate = cfg.learning_rate if cfg.schedule == "constant" and not cfg.warmup_steps else lr
    mask = True if cfg.decay_norms_and_biases else decay_mask
    if cfg.name == "adam":
        tx = optax.adam(rate)
    elif cfg.name == "adamw":
        tx = optax.adamw(rate, weight_decay=cfg.weight_decay, mask=mask)
    elif cfg.name == "lars":
        # LARS's trust ratio is also skipped for biases and norms, as in SimCLR.
        tx = optax.lars(
            rate,
            weight_decay=cfg.weight_decay,
            weight_decay_mask=mask,
            trust_ratio_mask=mask,
            momentum=cfg.momentum,
        )
    else:
        tx = optax.chain(
            optax.add_decayed_weights(cfg.weight_decay, mask), optax.sgd(rate, momentum=cfg.momentum)
        )
    if cfg.clip_grad_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(cfg.clip_grad_norm), tx)
    return tx, lr


def check(cfg: ml_collections.ConfigDict) -> None:
    """Refuse optimizer settings that cannot work, in one line each."""
    if cfg.name not in RULES:
        raise ConfigError(f"unknown optimizer.name '{cfg.name}' (known: {', '.join(RULES)})")
    if not cfg.learning_rate > 0:
        raise ConfigError(f"optimizer.learning_rate must be > 0, got {cfg.learning_rate}")
    for key in ("weight_decay", "clip_grad_norm", "warmup_steps", "decay_steps"):
        if cfg[key] < 0:
            raise ConfigError(f"optimizer.{key} must be >= 0, got {cfg[key]}")
    if cfg.name == "adam" and cfg.weight_decay:
        raise ConfigError("optimizer.weight_decay needs optimizer.name=adamw (adam has no decoupled decay)")
    if cfg.accumulation_steps < 1:
        raise ConfigError(f"optimizer.accumulation_steps must be >= 1, got {cfg.accumulation_steps}")
