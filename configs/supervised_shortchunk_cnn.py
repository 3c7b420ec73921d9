"""Supervised tagging with the short-chunk CNN (Won et al., "Evaluation of CNN-based automatic music tagging models", SMC 2020).

Paper values: 16 kHz audio, 59,049-sample chunks (3.69 s), 128-bin log-mel (n_fft 512,
hop 256, f_max 8 kHz), seven 3x3 conv layers of 128-128-256-256-256-256-512 channels
with 2x2 max-pooling, global max-pool, a 512-unit dense layer with dropout 0.5,
binary cross-entropy on MagnaTagATune's top-50 tags, Adam 1e-4, batch 16 (here with
warm-up and cosine decay).

Run (accelerator; DATA from `jaxmusic prepare mtat --out DATA --sample-rate 16000 ...`):

    jaxmusic train --config configs/supervised_shortchunk_cnn.py --config.data.dir=DATA --workdir W

Published (MagnaTagATune top-50, Won et al. split): the short-chunk CNN is reported
between the ResNet (ROC-AUC 91.29 / PR-AUC 46.14) and MusiCNN (91.06 / 44.93).

`:runlocal` trains a narrow variant on the built-in synthetic music's tags (8 kHz,
2-s crops) in a minute on a CPU:

    jaxmusic train --config configs/supervised_shortchunk_cnn.py:runlocal --workdir W
"""

from jaxmusic.config import base_config, runlocal_logmel


def get_config(arg: str | None = None):
    c = base_config()
    c.model.name = "shortchunk_cnn"
    c.objective.name = "supervised"
    c.objective.supervised.task = "tags"
    c.synth.sample_rate = 16000
    c.data.crop_samples = 59049
    c.data.worker_count = 8
    c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-4
    c.optimizer.warmup_steps = 1000
    c.optimizer.schedule = "cosine"
    c.batch_size = 16
    c.total_steps = 200_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000
    if arg == "runlocal":
        runlocal_logmel(c)
        c.model.shortchunk_cnn.n_channels = 8
        c.model.shortchunk_cnn.multipliers = (1, 2, 2, 4)
        c.model.shortchunk_cnn.dropout = 0.0
        c.optimizer.learning_rate = 1e-3
        c.optimizer.warmup_steps = 5
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c
