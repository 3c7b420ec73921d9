"""Supervised tagging with MusiCNN (Pons et al. 2018), at the limited-data paper's
scale (Plachouras, Benetos and Pauwels, 2025).

Paper values: 16 kHz audio, 3-s inputs, 96-bin log-mel (n_fft 512, hop 256), timbral
(vertical) and temporal (horizontal) front-end filters, a residual 1-D mid-end and
mean + max temporal pooling into a dense layer: 12M parameters, binary cross-entropy
on MagnaTagATune's top-50 tags. The original musicnn (0.79M) is
--config.model.musicnn.midend_filters=64 --config.model.musicnn.dense_units=200.

Run (accelerator; DATA from `jaxmusic prepare mtat --out DATA --sample-rate 16000 ...`):

    jaxmusic train --config configs/supervised_musicnn.py --config.data.dir=DATA --workdir W

Published (Won et al. 2020, MusiCNN on MagnaTagATune): ROC-AUC 91.06 / PR-AUC 44.93.

`:runlocal` trains a narrow variant on the built-in synthetic music's tags (8 kHz,
2-s crops) in a minute on a CPU:

    jaxmusic train --config configs/supervised_musicnn.py:runlocal --workdir W
"""

from jaxmusic.config import supervised_tagging


def get_config(arg: str | None = None):
    c = supervised_tagging("musicnn", 48000, arg, n_mels=96)
    if arg == "runlocal":
        c.model.musicnn.filter_factor = 0.125
        c.model.musicnn.temporal_widths = (16, 8)
        c.model.musicnn.midend_filters = 8
        c.model.musicnn.dense_units = 16
        c.model.musicnn.dropout = 0.0
    return c
