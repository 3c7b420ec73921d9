"""Supervised tagging with an AST-style spectrogram transformer (Gong, Chung and Glass,
"AST: Audio Spectrogram Transformer", Interspeech 2021), trained from scratch.

Paper values: 128-bin log-mel of 16 kHz audio with a 25-ms window and 10-ms hop,
16x16 patches at stride 10 (overlapping), ViT-Base (width 768, 12 layers, 12 heads,
MLP 3072: about 87M parameters), mean-pooled tokens here where AST reads a [CLS]
token. AST itself is initialised from ImageNet weights; jaxmusic downloads nothing, so
this trains from scratch, with BCE on MagnaTagATune's top-50 tags on 10.24-s crops.

    jaxmusic train --config configs/ast_supervised.py --config.data.dir=MTAT --workdir W

The limited-data paper's 5.12-s AST is configs/limited_data_transformer.py:ast.
`:runlocal` trains a 2-layer, 64-wide variant on the synthetic music's tags in a minute
or two on a CPU.
"""

from jaxmusic.config import base_config, runlocal_transformer, spectrogram_transformer_recipe


def get_config(arg: str | None = None):
    c = base_config()
    spectrogram_transformer_recipe(c, n_mels=128, crop_samples=163680)  # 10.24 s: 1024 frames
    c.model.spectrogram_transformer.update(
        patch_freq=16, patch_time=16, stride_freq=10, stride_time=10, width=768, depth=12, heads=12,
        mlp_dim=3072, dropout=0.1, max_time_patches=101,
    )  # fmt: skip
    c.objective.name = "supervised"
    c.objective.supervised.task = "tags"
    c.optimizer.learning_rate = 1e-4
    c.batch_size = 32
    if arg == "runlocal":
        runlocal_transformer(c)
    elif arg:
        raise ValueError(f"unknown config argument '{arg}' (known: runlocal)")
    return c
