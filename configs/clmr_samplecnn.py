"""CLMR: SimCLR pre-training of SampleCNN on raw waveform (Spijkervet & Burgoyne, ISMIR 2021).

Paper values: 22,050 Hz audio, 59,049-sample crops (2.68 s), SampleCNN (2,368,512
parameters), projector 512-512-64, NT-Xent at temperature 0.5, Adam 3e-4, batch 48
(the public config; the best published run used 96: --config.batch_size=96), and
the augmentation probabilities below. The paper trains about 10,000 epochs on
MagnaTagATune; that is days on an accelerator.

Run (accelerator; DATA is a dataset prepared by `jaxmusic prepare`):

    jaxmusic train --config configs/clmr_samplecnn.py --config.data.dir=DATA --workdir W

then `jaxmusic embed` and `jaxmusic probe`. Published linear-probe results on
MagnaTagATune top-50: ROC-AUC 88.5 / PR-AUC 35.4 (paper), 88.7 / 35.6 (authors' repo).

`:runlocal` is the same recipe shrunk to run on a CPU in minutes, on the built-in
synthetic music: a narrow 8-block SampleCNN on 19,683-sample crops at 8 kHz:

    jaxmusic train --config configs/clmr_samplecnn.py:runlocal --workdir W
"""

from jaxmusic.config import base_config


def get_config(arg: str | None = None):
    c = base_config()
    c.data.crop_samples = 59049
    c.data.worker_count = 8
    c.model.samplecnn.first_channels = 128
    c.model.samplecnn.block_channels = (128, 128, 256, 256, 256, 256, 256, 256, 512)
    c.model.samplecnn.final_channels = 512
    c.objective.simclr.projector_dims = (512, 64)
    c.objective.simclr.temperature = 0.5
    c.augment.polarity_p = 0.8
    c.augment.noise_p = 0.01
    c.augment.gain_p = 0.3
    c.augment.filter_p = 0.8
    c.augment.delay_p = 0.3
    c.augment.pitch_p = 0.6
    c.augment.reverb_p = 0.6
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 3e-4
    c.batch_size = 48
    c.total_steps = 300_000
    c.log_every_steps = 50
    c.checkpoint_every_steps = 5000
    c.synth.sample_rate = 22050

    if arg == "runlocal":
        c.synth.sample_rate = 8000
        c.synth.clips = 400
        c.data.crop_samples = 19683
        c.data.worker_count = 0
        c.model.samplecnn.first_channels = 16
        c.model.samplecnn.block_channels = (16, 16, 32, 32, 32, 32, 64, 64)
        c.model.samplecnn.final_channels = 64
        c.objective.simclr.projector_dims = (64, 32)
        c.batch_size = 16
        c.total_steps = 50
        c.log_every_steps = 10
        c.checkpoint_every_steps = 25
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c
