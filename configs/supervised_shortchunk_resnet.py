"""Supervised tagging with the short-chunk ResNet (Won et al., "Evaluation of CNN-based
automatic music tagging models", SMC 2020).

Paper values: 16 kHz audio, 59,049-sample chunks (3.69 s), 128-bin log-mel (n_fft 512,
hop 256, f_max 8 kHz), seven residual blocks of 128-128-256-256-256-256-512 channels,
a 512-unit dense layer with dropout 0.5, binary cross-entropy on MagnaTagATune's
top-50 tags, Adam 1e-4, batch 16. The authors train about 200 epochs with a
changing optimizer; here Adam with warm-up and cosine decay over the same budget.

Run (accelerator; DATA from `jaxmusic prepare mtat --out DATA --sample-rate 16000 ...`):

    jaxmusic train --config configs/supervised_shortchunk_resnet.py --config.data.dir=DATA --workdir W

Published (MagnaTagATune top-50, Won et al. split, chunk-averaged): ROC-AUC 91.29 /
PR-AUC 46.14. That is the supervised model's own head; `jaxmusic embed` + `probe` on
its pooled embedding measures the representation as the other papers do.

`:runlocal` trains a narrow variant on the built-in synthetic music's tags (8 kHz,
2-s crops) in a minute on a CPU:

    jaxmusic train --config configs/supervised_shortchunk_resnet.py:runlocal --workdir W
"""

from jaxmusic.config import supervised_tagging


def get_config(arg: str | None = None):
    c = supervised_tagging("shortchunk_resnet", 59049, arg)
    if arg == "runlocal":
        c.model.shortchunk_resnet.n_channels = 8
        c.model.shortchunk_resnet.multipliers = (1, 2, 2, 4)
        c.model.shortchunk_resnet.dropout = 0.0
    return c
