"""Supervised tagging with the limited-data paper's VGGish-like CNN (Plachouras,
Benetos and Pauwels, 2025), jaxmusic's `fcn` encoder.

Paper values: 16 kHz audio, 3.75-s inputs (60,000 samples), 128-bin log-mel, a
3.7M-parameter stack of 3x3 conv + BN + ReLU + 2x2 max-pool blocks (the authors' code
follows Won et al.'s short-chunk CNN), binary cross-entropy on MagnaTagATune's top-50
tags. Train it on a limited-data budget with --config.data.budget=per_class:tags:K
(see README, budgets); Choi et al.'s FCN-5 is `--config.model.fcn.channels=...` away
(jaxmusic/models/fcn.py).

Run (accelerator; DATA from `jaxmusic prepare mtat --out DATA --sample-rate 16000 ...`):

    jaxmusic train --config configs/supervised_fcn.py --config.data.dir=DATA --workdir W

Published (Won et al. 2020, FCN on MagnaTagATune): ROC-AUC 90.05 / PR-AUC 42.95; the
limited-data paper reports this model's probe results per budget.

`:runlocal` trains a narrow variant on the built-in synthetic music's tags (8 kHz,
2-s crops) in a minute on a CPU:

    jaxmusic train --config configs/supervised_fcn.py:runlocal --workdir W
"""

from jaxmusic.config import supervised_tagging


def get_config(arg: str | None = None):
    c = supervised_tagging("fcn", 60000, arg)
    if arg == "runlocal":
        c.model.fcn.channels = (8, 16, 16)
        c.model.fcn.freq_pools = (2, 2, 2)
        c.model.fcn.time_pools = (2, 2, 2)
        c.model.fcn.embedding_dim = 32
        c.model.fcn.dropout = 0.0
    return c
