"""The limited-data paper's transformers (Plachouras, Benetos and Pauwels, "Learning music
audio representations with limited data", 2025), trained on a budget of MagnaTagATune.

Argument: `MODEL[,runlocal]`:
- `ast`: an AST-style spectrogram transformer (the paper: 87M parameters, 128-bin
  log-mel, 5.12 s), ViT-Base on 16x16 patches at stride 10, trained supervised with
  BCE on the top-50 tags;
- `mae`: a masked-autoencoder transformer (the paper: 7.2M parameters, 96-bin
  log-mel, 4.85 s), trained by reconstructing 75% hidden patches; only its encoder is
  kept for embedding.

Both take 16 kHz audio with a 25-ms window and a 10-ms hop (100 frames per second).
With the budgets of configs/limited_data_cnn.py:

    jaxmusic train --config configs/limited_data_transformer.py:mae \\
        --config.data.dir=MTAT --config.data.budget=per_class:tags:10 --workdir W

then `jaxmusic embed` and `jaxmusic probe`, beside `embed --random-init`.

`:MODEL,runlocal` is a narrow variant on the built-in synthetic music (8 kHz, 2-s crops,
a 32-bin log-mel), a minute or two on a CPU.
"""

from jaxmusic.config import base_config, runlocal_transformer, spectrogram_transformer_recipe

MODELS = ("ast", "mae")


def get_config(arg: str | None = None):
    parts = (arg or "").split(",")
    if len(parts) not in (1, 2) or parts[0] not in MODELS or parts[1:] not in ([], ["runlocal"]):
        raise ValueError(f"argument '{arg}' must be MODEL[,runlocal] with MODEL in {list(MODELS)}, e.g. mae")
    model, local = parts[0], parts[1:] == ["runlocal"]
    c = base_config()
    t = c.model.spectrogram_transformer
    if model == "ast":
        spectrogram_transformer_recipe(c, n_mels=128, crop_samples=81760)  # 5.12 s: 512 frames
        t.update(patch_freq=16, patch_time=16, stride_freq=10, stride_time=10, max_time_patches=50)
        t.update(width=768, depth=12, heads=12, mlp_dim=3072, dropout=0.1)
        c.objective.name = "supervised"
        c.objective.supervised.task = "tags"
        c.optimizer.learning_rate = 1e-4
        c.batch_size = 32
    else:
        spectrogram_transformer_recipe(c, n_mels=96, crop_samples=77600)  # 4.85 s: 486 frames
        t.update(patch_freq=16, patch_time=16, stride_freq=16, stride_time=16, max_time_patches=30)
        t.update(width=256, depth=8, heads=8, mlp_dim=1024, dropout=0.0)
        c.objective.name = "mae"
        c.objective.mae.update(mask_ratio=0.75, decoder_width=128, decoder_depth=4, decoder_heads=4)
        c.objective.mae.update(decoder_mlp_dim=512, max_patches=180)  # a 6 x 30 grid
        c.optimizer.learning_rate = 5e-4
        c.batch_size = 128
    if local:
        runlocal_transformer(c)
    return c
