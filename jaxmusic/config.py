"""The configuration schema shared by every jaxmusic command, and config loading.

Every experiment file in configs/ starts from :func:`base_config` and changes values,
so the set of keys is fixed in one place. That is what lets a typo, in a file or on
the command line, be refused in one line before anything is compiled.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from pathlib import Path

import ml_collections


class ConfigError(ValueError):
    """A configuration problem, reported to the user as one line."""


def base_config() -> ml_collections.ConfigDict:
    """All keys a jaxmusic config may hold, with defaults for a small CPU run.

    `model` and `objective` hold one sub-section per registered encoder and objective
    (`model.samplecnn.*`, `objective.simclr.*`, ...), so each plug-in declares its own
    keys and the schema stays closed as the zoo grows.
    """
    # The registries import models and objectives, which import this module.
    from jaxmusic.models.registry import model_config
    from jaxmusic.objectives.registry import objective_config

    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    # A prepared dataset folder (manifest.json + shards). Empty: the built-in synthetic
    # music described by `synth`, prepared under the workdir on first use.
    c.data.dir = ""
    c.data.train_split = "train"
    c.data.crop_samples = 59049  # a length the encoder takes (see models/registry.py)
    c.data.worker_count = 0  # Grain multiprocess workers; 0 reads in the main process
    c.data.worker_buffer_size = 2
    c.data.read_threads = 4
    c.data.shuffle_seed = -1  # order and crops of the training data; -1: `seed`
    # Limited-data training subset (jaxmusic/data/subsets.py): "full", "minutes:M" or
    # "per_class:TASK:K" over `budget_classes` (the limited-data paper's MTAT genres).
    c.data.budget = "full"
    c.data.budget_seed = 0
    c.data.budget_classes = (
        "classical", "techno", "electronic", "rock", "indian", "opera", "pop", "new age", "country", "choral",
    )  # fmt: skip

    c.synth = ml_collections.ConfigDict()
    c.synth.clips = 800
    c.synth.seed = 0
    c.synth.sample_rate = 8000
    c.synth.duration_s = 5.0

    c.model = model_config()
    c.objective = objective_config()

    c.augment = ml_collections.ConfigDict()
    c.augment.polarity_p = 0.8
    c.augment.noise_p = 0.01
    c.augment.noise_std = (1e-4, 1e-2)  # relative to the signal's std
    c.augment.gain_p = 0.3
    c.augment.gain_db = (-20.0, -1.0)
    c.augment.filter_p = 0.8
    c.augment.lowpass_hz = (2200.0, 4000.0)
    c.augment.highpass_hz = (200.0, 1200.0)
    # CLMR's last three transforms, off by default (configs/clmr_samplecnn.py turns
    # them on): at 0 they are not even compiled, so such a config augments as before.
    c.augment.delay_p = 0.0
    c.augment.delay_ms = (200.0, 500.0)  # lag drawn from low, low + step, ..., high
    c.augment.delay_step_ms = 50.0
    c.augment.delay_volume = 0.5
    c.augment.pitch_p = 0.0
    c.augment.pitch_semitones = (-7.0, 7.0)
    c.augment.reverb_p = 0.0
    # sox reverb's parameters, each in 0-100 (see jaxmusic/augment.py: reverb).
    c.augment.reverb_reverberance = (0.0, 100.0)
    c.augment.reverb_damping = (0.0, 100.0)
    c.augment.reverb_room_size = (0.0, 100.0)

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"  # adam (CLMR), adamw, lars, sgd
    c.optimizer.learning_rate = 3e-4  # the peak, after warm-up
    c.optimizer.weight_decay = 0.0
    # Weight decay spares biases and normalisation scales (every parameter with fewer
    # than two dimensions) unless this is True.
    c.optimizer.decay_norms_and_biases = False
    c.optimizer.momentum = 0.9  # lars and sgd
    c.optimizer.warmup_steps = 0  # linear warm-up from 0
    c.optimizer.schedule = "constant"  # after warm-up: constant or cosine
    c.optimizer.decay_steps = 0  # cosine length after warm-up; 0: up to total_steps
    c.optimizer.end_learning_rate_factor = 0.0  # cosine ends at this fraction of the peak
    c.optimizer.clip_grad_norm = 0.0  # clip the global gradient norm to this; 0: off
    # The global batch is split into this many micro-batches whose gradients are
    # averaged: for a loss that is a mean over examples (supervised; refused for
    # contrastive objectives, whose negatives would shrink) the update of one
    # batch_size batch with 1/k of its activation memory. BatchNorm statistics are
    # per micro-batch.
    c.optimizer.accumulation_steps = 1

    c.batch_size = 48  # global, over all devices and processes
    c.total_steps = 1000
    c.mesh_shape = (-1,)  # (data,) or (data, fsdp) device counts; one -1 takes the rest
    c.log_every_steps = 10
    c.checkpoint_every_steps = 100
    c.keep_checkpoints = 3
    c.async_checkpointing = True
    c.progress_bar = True

    # Evaluation during training: the objective's validation loss (and task metric)
    # over `split`, every `every_steps` steps (0: never).
    c.eval = ml_collections.ConfigDict()
    c.eval.every_steps = 0
    c.eval.split = "valid"
    c.eval.batch_size = 0  # global; 0: one micro-batch (batch_size / accumulation_steps)
    c.eval.seed = 0  # crops of the validation windows, the same at every evaluation

    c.embed = ml_collections.ConfigDict()
    c.embed.batch_size = 64
    c.embed.splits = ("train", "valid", "test")

    c.probe = ml_collections.ConfigDict()
    c.probe.learning_rate = 1e-3
    c.probe.weight_decay = 1e-6
    c.probe.batch_size = 256
    c.probe.max_epochs = 200
    c.probe.patience = 10
    return c


def _flatten(cfg: ml_collections.ConfigDict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate(config: ml_collections.ConfigDict) -> None:
    """Refuse keys that the schema does not know, and values of the wrong type."""
    known = _flatten(base_config())
    for path, value in _flatten(config).items():
        if path not in known:
            raise ConfigError(f"unknown config key '{path}'{_suggest(path, list(known))}")
        want = known[path]
        if want is not None and value is not None and not _same_kind(want, value):
            raise ConfigError(f"config key '{path}' must be {type(want).__name__}, got {value!r}")


def _same_kind(want: object, value: object) -> bool:
    if isinstance(want, bool) or isinstance(value, bool):
        return isinstance(want, bool) and isinstance(value, bool)
    if isinstance(want, int):
        return isinstance(value, int)
    if isinstance(want, float):
        return isinstance(value, (int, float))
    if isinstance(want, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(want))


def load(spec: str, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    """Load `path/to/config.py[:arg]`, apply `config.a.b=value` overrides, validate.

    The file must define `get_config(arg: str | None) -> ConfigDict`.
    """
    config = load_file(spec)
    validate(config)
    for item in overrides:
        apply_override(config, item)
    validate(config)
    return config


def load_file(spec: str, folder: str = "configs") -> ml_collections.ConfigDict:
    """`get_config(arg)` of `path/to/file.py[:arg]` (or of a file shipped in `folder`)."""
    path, _, arg = spec.partition(":")
    file = _locate(path, folder)
    module_spec = importlib.util.spec_from_file_location(f"_jaxmusic_{folder}_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path} defines no get_config(arg)")
    try:
        return module.get_config(arg or None)
    except ValueError as e:
        raise ConfigError(f"{spec}: {e}") from None


def _locate(path: str, folder: str = "configs") -> Path:
    """A config file by path, or one shipped with jaxmusic (`configs/NAME.py`, `suites/NAME.py`)."""
    file = Path(path)
    if file.is_file():
        return file
    shipped = Path(__file__).resolve().parent.parent / folder / file.name
    if file.parent.name in (folder, "") and shipped.is_file():
        return shipped
    raise ConfigError(f"config file not found: {path}")


def apply_override(config: ml_collections.ConfigDict, item: str, prefix: str = "config") -> None:
    """Apply one `a.b=value` override, parsed with the type the key already has."""
    key, sep, raw = item.partition("=")
    key = key.removeprefix("--").removeprefix(f"{prefix}.")
    if not sep:
        raise ConfigError(f"override '{item}' must look like --{prefix}.{key}=VALUE")
    known = _flatten(config)
    if key not in known:
        raise ConfigError(f"unknown config key '{key}'{_suggest(key, list(known))}")
    current = known[key]
    value = _parse(raw, current, key)
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        node = node[p]
    with node.unlocked():
        node[leaf] = value


def _parse(raw: str, current: object, key: str) -> object:
    if isinstance(current, str):
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise ConfigError(f"cannot parse '{raw}' for config key '{key}'") from None
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(current, tuple) and not isinstance(value, tuple):
        value = (value,)
    if current is not None and not _same_kind(current, value):
        raise ConfigError(f"config key '{key}' must be {type(current).__name__}, got {raw!r}")
    return value


def runlocal(c: ml_collections.ConfigDict, crop_samples: int) -> ml_collections.ConfigDict:
    """Shrink a paper config's data and schedule to a CPU-minutes `:runlocal` run on the
    built-in synthetic music (8 kHz); the config then narrows its own encoder."""
    c.data.dir = ""
    c.data.worker_count = 0
    c.data.crop_samples = crop_samples
    c.synth.sample_rate = 8000
    c.synth.clips = 240
    c.synth.duration_s = 4.0
    c.batch_size = 16
    c.total_steps = 30
    c.log_every_steps = 5
    c.checkpoint_every_steps = 30
    c.eval.every_steps = 15 if c.eval.every_steps else 0
    c.eval.batch_size = 16
    return c


def runlocal_logmel(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`runlocal` for a log-mel encoder: 2-s crops, a 32-bin log-mel of 8 kHz audio."""
    runlocal(c, crop_samples=16000)
    c.model.logmel.update(sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, f_max=4000.0)
    return c


def supervised_tagging(
    model: str, crop_samples: int, arg: str | None, n_mels: int = 128
) -> ml_collections.ConfigDict:
    """The recipe the supervised paper configs share: `model` trained with BCE on the
    `tags` task at 16 kHz (MagnaTagATune's top-50 on real data), no waveform
    augmentation, Adam 1e-4 with warm-up and cosine decay, batch 16, validation every
    5,000 steps; with `arg == "runlocal"` shrunk by `runlocal` (the config then narrows
    its encoder)."""
    c = base_config()
    c.model.name = model
    c.objective.name = "supervised"
    c.objective.supervised.task = "tags"
    c.synth.sample_rate = 16000
    c.data.crop_samples = crop_samples
    c.data.worker_count = 8
    c.model.logmel.n_mels = n_mels
    c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
    c.optimizer.update(name="adam", learning_rate=1e-4, warmup_steps=1000, schedule="cosine")
    c.batch_size = 16
    c.total_steps = 200_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000
    if arg == "runlocal":
        if model == "samplecnn":
            runlocal(c, crop_samples=19683)
        else:
            runlocal_logmel(c)
        c.optimizer.update(learning_rate=1e-3, warmup_steps=5)
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c


def spectrogram_transformer_recipe(c: ml_collections.ConfigDict, n_mels: int, crop_samples: int) -> None:
    """What the spectrogram-transformer configs share: AST's log-mel (16 kHz, 25-ms window,
    10-ms hop: 100 frames per second) with `n_mels` bins, AdamW with warm-up and cosine
    decay, no waveform augmentation."""
    c.model.name = "spectrogram_transformer"
    c.model.logmel.update(sample_rate=16000, n_fft=400, hop_length=160, n_mels=n_mels, f_max=8000.0)
    c.synth.sample_rate = 16000
    c.data.crop_samples = crop_samples
    c.data.worker_count = 8
    c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
    c.optimizer.update(name="adamw", weight_decay=0.05, warmup_steps=1000, schedule="cosine")
    c.total_steps = 100_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000


def runlocal_transformer(c: ml_collections.ConfigDict) -> None:
    """`runlocal` for a spectrogram transformer: `runlocal_logmel`'s data, 8x8 patches of a
    2-layer, 64-wide transformer (and a 1-layer decoder for the masked autoencoder)."""
    runlocal_logmel(c)
    c.total_steps = 60
    c.checkpoint_every_steps = 60
    c.model.spectrogram_transformer.update(
        patch_freq=8, patch_time=8, stride_freq=8, stride_time=8, width=64, depth=2, heads=4, mlp_dim=128,
        dropout=0.0,
    )  # fmt: skip
    c.objective.mae.update(
        decoder_width=32, decoder_depth=1, decoder_heads=2, decoder_mlp_dim=64, max_patches=64
    )
    c.optimizer.update(learning_rate=1e-3, weight_decay=1e-4, warmup_steps=5)


def runlocal_language(c: ml_collections.ConfigDict, objective: str) -> None:
    """`runlocal` for an audio-text objective (`objective.<objective>`): `runlocal_logmel`'s
    data with 600 clips (captions to generalise from: 420 in training), 300 steps at a
    constant rate (the proxy tasks need a few hundred steps to start), a narrow `fcn`
    backbone (frames at an eighth of the mel rate: 15 per crop) and an 800-token vocabulary;
    the config then narrows its own text side."""
    runlocal_logmel(c)
    c.synth.clips = 600
    c.total_steps = 300
    c.checkpoint_every_steps = 300
    c.eval.every_steps = 150
    c.model.name = "fcn"
    c.model.fcn.update(
        channels=(8, 16, 32), freq_pools=(2, 2, 2), time_pools=(2, 2, 2), embedding_dim=32, dropout=0.0
    )
    c.objective[objective].tokenizer.update(vocab_size=800, max_tokens=48)
    c.optimizer.update(learning_rate=1e-3, weight_decay=1e-4, warmup_steps=10, schedule="constant")
