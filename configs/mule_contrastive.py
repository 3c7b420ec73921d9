"""MULE: contrastive pre-training on log-mel with two windows of one track as the pair
(McCallum et al., "Supervised and unsupervised learning of audio representations for
music understanding", ISMIR 2022).

Paper values: 16 kHz audio, 96-bin log-mel with a 10-ms hop, 3-s windows, SimCLR's
loss at temperature 0.1 with positives drawn from the same track. The paper's encoder
is an SF-NFNet-F0, which jaxmusic does not have; here the short-chunk ResNet (12M
parameters) stands in. The window gap range, projector and optimiser are not given
in the paper's abstract and are jaxmusic's choices (unverified): gap 0-10 s,
projector 512-128, LARS with warm-up and cosine decay, batch 1024.

Run (accelerator; DATA from any `jaxmusic prepare`, at 16 kHz):

    jaxmusic train --config configs/mule_contrastive.py --config.data.dir=DATA --workdir W

Published probe results of MULE (MLP probe): MagnaTagATune ROC-AUC 91.4 / PR-AUC 40.4;
GiantSteps key 66.7 (where the supervised model collapses to 28.6).

`:runlocal` trains a narrow variant on the built-in synthetic music (8 kHz, 2-s
windows) in a minute on a CPU:

    jaxmusic train --config configs/mule_contrastive.py:runlocal --workdir W
"""

from jaxmusic.config import base_config, runlocal_logmel


def get_config(arg: str | None = None):
    c = base_config()
    c.model.name = "shortchunk_resnet"
    c.model.shortchunk_resnet.dropout = 0.0
    c.model.logmel.update(n_mels=96, n_fft=400, hop_length=160)
    c.objective.name = "mule"
    c.objective.mule.temperature = 0.1
    c.synth.sample_rate = 16000
    c.data.crop_samples = 48000
    c.data.worker_count = 8
    # Positives differ in time, not by augmentation: the waveform chain is off.
    c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
    c.optimizer.name = "lars"
    c.optimizer.learning_rate = 1.0
    c.optimizer.weight_decay = 1e-6
    c.optimizer.warmup_steps = 5000
    c.optimizer.schedule = "cosine"
    c.batch_size = 1024
    c.total_steps = 200_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000
    if arg == "runlocal":
        runlocal_logmel(c)
        c.objective.mule.projector_dims = (32, 16)
        c.objective.mule.max_gap_s = 2.0
        c.model.shortchunk_resnet.n_channels = 8
        c.model.shortchunk_resnet.multipliers = (1, 2, 2, 4)
        c.optimizer.name = "adam"
        c.optimizer.learning_rate = 1e-3
        c.optimizer.weight_decay = 0.0
        c.optimizer.warmup_steps = 5
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c
