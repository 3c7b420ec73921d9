"""Masked spectrogram modelling with a ViT-Base masked autoencoder (after Huang et al.,
"Masked Autoencoders that Listen", NeurIPS 2022).

128-bin log-mel of 16 kHz audio (25-ms window, 10-ms hop), 10.24-s crops cut into
16x16 non-overlapping patches (8 x 64 = 512 of them: overlapping patches would leak
hidden content into visible ones), 80% hidden; a ViT-Base encoder (width 768, 12
layers: about 86M parameters) sees the visible 20%, and an 8-layer, 512-wide decoder
reconstructs the normalised hidden patches. AdamW 2e-4, weight decay 0.05, batch 128.
Only the encoder is kept:

    jaxmusic train --config configs/mae_transformer.py --config.data.dir=DATA --workdir W
    jaxmusic embed --workdir W --data DATA --out E

The limited-data paper's 7.2M masked transformer is configs/limited_data_transformer.py:mae.
`:runlocal` is a 2-layer, 64-wide variant on the synthetic music, a minute or two on a CPU;
its reconstruction loss falls over the run.
"""

from jaxmusic.config import base_config, runlocal_transformer, spectrogram_transformer_recipe


def get_config(arg: str | None = None):
    c = base_config()
    spectrogram_transformer_recipe(c, n_mels=128, crop_samples=163680)  # 10.24 s: 1024 frames
    c.model.spectrogram_transformer.update(
        patch_freq=16, patch_time=16, stride_freq=16, stride_time=16, width=768, depth=12, heads=12,
        mlp_dim=3072, dropout=0.0, max_time_patches=64,
    )  # fmt: skip
    c.objective.name = "mae"
    c.objective.mae.update(
        mask_ratio=0.8,
        decoder_width=512,
        decoder_depth=8,
        decoder_heads=16,
        decoder_mlp_dim=2048,
        max_patches=512,
    )
    c.optimizer.learning_rate = 2e-4
    c.batch_size = 128
    if arg == "runlocal":
        runlocal_transformer(c)
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c
