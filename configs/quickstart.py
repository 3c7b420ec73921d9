"""The quickstart: the papers' comparison on built-in synthetic music, on a CPU.

A narrow 8-block SampleCNN on 19,683-sample crops (2.46 s at 8 kHz), trained twice:
with NT-Xent and the on-device augmentation chain (CLMR), and supervised on the
synthetic tags (BCE); each is then embedded and probed on every synthetic task beside
the same encoder at random initialisation:

    jaxmusic quickstart --workdir /tmp/jaxmusic-quickstart

Under ten minutes on a 2-core CPU; the figures it gives are in the README.
"""

from jaxmusic.config import base_config


def get_config(arg: str | None = None):
    c = base_config()
    c.synth.clips = 800
    c.synth.sample_rate = 8000
    c.synth.duration_s = 5.0
    c.data.crop_samples = 19683
    c.model.samplecnn.first_channels = 32
    c.model.samplecnn.block_channels = (32, 32, 64, 64, 64, 64, 128, 128)
    c.model.samplecnn.final_channels = 128
    c.objective.simclr.projector_dims = (128, 64)
    c.objective.simclr.temperature = 0.5
    c.objective.supervised.task = "tags"  # trained by the quickstart's supervised run
    c.optimizer.learning_rate = 1e-3
    c.batch_size = 32
    c.total_steps = 300
    c.log_every_steps = 25
    c.checkpoint_every_steps = 100
    if arg == "runlocal":  # the quickstart already is local; a still smaller smoke run
        c.synth.clips = 200
        c.total_steps = 20
        c.checkpoint_every_steps = 10
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c
