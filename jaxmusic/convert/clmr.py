"""CLMR's released PyTorch SampleCNN checkpoints -> jaxmusic Flax variables.

CLMR (Spijkervet & Burgoyne 2021) trains its SampleCNN as `encoder` inside a SimCLR
module inside a PyTorch Lightning module, so its files come in three spellings:

- Lightning checkpoints: `{"state_dict": {...}, "epoch": ..., "pytorch-lightning_version": ...}`
  whose state dict holds the encoder as `model.encoder.*` (and, because the Lightning module
  also keeps the same encoder as `self.encoder`, a second copy as `encoder.*`), plus the
  projector `model.projector.{0,2}.weight`;
- plain state dicts with `encoder.*` keys;
- the SampleCNN's own state dict, with bare keys.

The SampleCNN's keys are `sequential.{i}.0.{weight,bias}` (Conv1d) and
`sequential.{i}.1.{weight,bias,running_mean,running_var,num_batches_tracked}` (BatchNorm1d)
for i = 0 (the stride-3 stem), 1..9 (the pooled blocks) and 10 (the final conv). Its `fc`
is a classifier head that CLMR replaces by an identity when it uses the network as an
encoder; it is not part of what is converted. Block i maps to Flax `Conv_{i}` and
`BatchNorm_{i}` of `jaxmusic.models.samplecnn.SampleCNN`.

Files are read with `torch.load(weights_only=True)`: tensors and plain containers only,
so no code stored in a checkpoint ever runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmusic.models import samplecnn

# Tried in order: the Lightning spelling first (as CLMR's own loader does), then the
# plain `encoder.` dict, then the SampleCNN's own keys.
PREFIXES = ("model.encoder.", "encoder.", "")
_KEY = re.compile(r"sequential\.(\d+)\.([01])\.(weight|bias|running_mean|running_var)")
_IGNORED = re.compile(r"(fc\.|dropout\.).*|.*\.num_batches_tracked")
# BatchNorm1d tensor -> (Flax collection, leaf).
_BN_LEAVES = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}


class ConvertError(ValueError):
    """A checkpoint that cannot be converted: the message says why."""


def _load(path: str | Path) -> Any:
    try:
        import torch
    except ImportError as e:
        raise ConvertError(
            "converting PyTorch checkpoints needs torch: pip install 'jaxmusic[convert]'"
        ) from e
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ConvertError(f"{path}: no such file") from e
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConvertError(
            f"{path}: not a checkpoint that loads with weights_only=True (tensors and plain "
            f"containers only; nothing in the file is executed): {first}"
        ) from e


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The SampleCNN encoder's tensors in a CLMR checkpoint, with bare keys, as float32 NumPy.

    Accepts Lightning checkpoints (`model.encoder.*`), plain `encoder.*` dicts and bare
    SampleCNN state dicts; drops the projector, the `fc` head and BatchNorm step counters.
    """
    ckpt = _load(path)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict):
        raise ConvertError(f"{path}: expected a state dict, found a {type(ckpt).__name__}")
    keys = [k for k in ckpt if isinstance(k, str)]
    for prefix in PREFIXES:
        found = {k[len(prefix) :]: ckpt[k] for k in keys if k.startswith(prefix)}
        found = {k: v for k, v in found.items() if k.startswith("sequential.")}
        if found:
            break
    else:
        seen = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
        raise ConvertError(
            f"{path}: no SampleCNN encoder keys (looked for 'sequential.*' under prefixes "
            f"{', '.join(repr(p) for p in PREFIXES if p)} or none); keys seen: {seen or '(none)'}"
        )
    state = {}
    for key, value in found.items():
        if _IGNORED.fullmatch(key):
            continue
        if not hasattr(value, "detach"):
            raise ConvertError(f"{path}: '{prefix}{key}' is a {type(value).__name__}, not a tensor")
        state[key] = value.detach().cpu().float().numpy()
    return state


def config_for(state: dict[str, np.ndarray]) -> ml_collections.ConfigDict:
    """The `model.samplecnn` section that the weights' shapes describe."""
    convs = sorted(int(m.group(1)) for k in state if (m := _KEY.fullmatch(k)) and k.endswith(".0.weight"))
    if len(convs) < 3 or convs != list(range(len(convs))):
        raise ConvertError(
            f"expected convolutions sequential.0.0 .. sequential.N.0 (a stem, blocks and a final "
            f"conv), found indices {convs}"
        )
    channels = [int(state[f"sequential.{i}.0.weight"].shape[0]) for i in convs]
    c = samplecnn.default_config()
    c.first_channels = channels[0]
    c.block_channels = tuple(channels[1:-1])
    c.final_channels = channels[-1]
    return c


def _check_config(state: dict[str, np.ndarray], model: ml_collections.ConfigDict) -> None:
    found, given = config_for(state), model.samplecnn
    shape = lambda c: (c.first_channels, tuple(c.block_channels), c.final_channels)
    if shape(found) != shape(given):
        names = "(first_channels, block_channels, final_channels)"
        raise ConvertError(
            f"the checkpoint's SampleCNN has {names} = {shape(found)} but model.samplecnn has {shape(given)}"
        )


def samplecnn_variables(state: dict[str, np.ndarray], model: ml_collections.ConfigDict) -> dict:
    """Flax variables {"params", "batch_stats"} of `samplecnn.from_config(model, float32)`.

    `state` has bare SampleCNN keys (as `read_state_dict` returns); `fc.*` and
    `num_batches_tracked` are ignored. Every leaf the module expects must be filled with its
    exact shape, and every other tensor in `state` must be used; anything else is a
    `ConvertError`.
    """
    _check_config(state, model)
    module = samplecnn.from_config(model, jnp.float32)
    hop = samplecnn.receptive_samples(len(model.samplecnn.block_channels))
    expected = jax.eval_shape(
        lambda: module.init(jax.random.key(0), jnp.zeros((1, hop), jnp.float32), train=False)
    )
    variables: dict[str, dict[str, dict[str, np.ndarray]]] = {"params": {}, "batch_stats": {}}
    used = set()

    def put(key: str, collection: str, layer: str, leaf: str, value: np.ndarray) -> None:
        want = expected[collection].get(layer, {}).get(leaf)
        if want is None:
            raise ConvertError(
                f"'{key}' maps to {collection}/{layer}/{leaf}, which the SampleCNN does not have"
            )
        if tuple(value.shape) != tuple(want.shape):
            raise ConvertError(
                f"'{key}' has shape {tuple(state[key].shape)}: as {collection}/{layer}/{leaf} it "
                f"gives {tuple(value.shape)} but the SampleCNN expects {tuple(want.shape)}"
            )
        variables[collection].setdefault(layer, {})[leaf] = np.asarray(value, np.float32)
        used.add(key)

    for key, value in state.items():
        m = _KEY.fullmatch(key)
        if m is None:
            continue
        i, part, name = int(m.group(1)), m.group(2), m.group(3)
        if part == "0":  # Conv1d: weight [out, in, k] -> kernel [k, in, out]
            if name not in ("weight", "bias"):
                continue
            leaf = "kernel" if name == "weight" else "bias"
            put(key, "params", f"Conv_{i}", leaf, value.transpose(2, 1, 0) if value.ndim == 3 else value)
        else:  # BatchNorm1d
            collection, leaf = _BN_LEAVES[name]
            put(key, collection, f"BatchNorm_{i}", leaf, value)

    unused = sorted(k for k in set(state) - used if not _IGNORED.fullmatch(k))
    if unused:
        raise ConvertError(f"encoder tensors with no place in the SampleCNN: {', '.join(unused[:8])}")
    missing = [
        f"{collection}/{layer}/{leaf}"
        for collection, layers in expected.items()
        for layer, leaves in layers.items()
        for leaf in leaves
        if leaf not in variables.get(collection, {}).get(layer, {})
    ]
    if missing:
        raise ConvertError(f"the checkpoint does not fill {', '.join(missing[:8])}")
    return variables


def convert_clmr(in_path: str | Path, out_dir: str | Path, config: ml_collections.ConfigDict) -> Path:
    """Convert a CLMR checkpoint into an encoder checkpoint in `out_dir` that `embed` restores."""
    from jaxmusic.train.checkpoint import write_encoder_checkpoint

    name = config.model.get("name", "samplecnn")
    if name != "samplecnn":
        raise ConvertError(f"CLMR checkpoints hold a SampleCNN; config.model.name is '{name}'")
    if "samplecnn" not in config.model:
        raise ConvertError("config.model has no samplecnn section to describe the converted encoder")
    variables = samplecnn_variables(read_state_dict(in_path), config.model)
    return write_encoder_checkpoint(out_dir, config, variables, origin=f"CLMR PyTorch checkpoint {in_path}")
