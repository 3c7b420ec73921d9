"""Supervised tagging with SampleCNN on raw waveform (Lee et al. 2017, as in Won et al., "Evaluation of CNN-based automatic music tagging models", SMC 2020).

Paper values: 16 kHz raw audio, 59,049-sample inputs (3.69 s), SampleCNN with nine
blocks (jaxmusic's CLMR layout, 2,368,512 parameters), a linear 50-way head, binary
cross-entropy on MagnaTagATune's top-50 tags.

Run (accelerator; DATA from `jaxmusic prepare mtat --out DATA --sample-rate 16000 ...`):

    jaxmusic train --config configs/supervised_samplecnn.py --config.data.dir=DATA --workdir W

Published (Won et al. 2020, sample-level CNN on MagnaTagATune): ROC-AUC 90.58 /
PR-AUC 44.22.

`:runlocal` trains a narrow variant on the built-in synthetic music's tags (8 kHz,
19,683-sample crops) in a minute on a CPU:

    jaxmusic train --config configs/supervised_samplecnn.py:runlocal --workdir W
"""

from jaxmusic.config import supervised_tagging


def get_config(arg: str | None = None):
    c = supervised_tagging("samplecnn", 59049, arg)
    if arg == "runlocal":
        c.model.samplecnn.first_channels = 16
        c.model.samplecnn.block_channels = (16, 16, 32, 32, 32, 32, 64, 64)
        c.model.samplecnn.final_channels = 64
    return c
