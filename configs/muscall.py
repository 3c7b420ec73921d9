"""Dual-encoder audio-text contrastive learning, MusCALL-style (Manco et al., "Contrastive
audio-language learning for music", ISMIR 2022).

Paper values: a ResNet on 128-bin log-mel of 16 kHz audio (jaxmusic's short-chunk
ResNet), a 4-layer text transformer (trained from scratch here, on a subword
tokenizer fitted to the training captions), a 512-d joint space, CLIP's symmetric
InfoNCE over the global batch with a learned temperature initialised at 0.07, AdamW
lr 5e-5 and weight decay 0.2, batch 256; the optional audio-only SimCLR term
(weight 0.3, temperature 0.5) with `:simclr`. DATA is a captioned dataset (`jaxmusic
prepare captions`, Song Describer or MusicCaps, or `prepare folder --captions`):

    jaxmusic train --config configs/muscall.py --config.data.dir=DATA --workdir W
    jaxmusic language --workdir W        # text-to-audio / audio-to-text retrieval, zero-shot tags

The paper reports retrieval recall@10 and zero-shot tagging on its own caption set;
what to compare with here is the same recipe's figures on the same data.

`:runlocal` (or `:simclr,runlocal`) trains a narrow variant on the built-in synthetic
music, whose captions name style, key, tempo and instruments in varied wording, in a
few minutes on a CPU.
"""

from jaxmusic.config import base_config, runlocal_language


def get_config(arg: str | None = None):
    parts = [p for p in (arg or "").split(",") if p]
    if set(parts) - {"simclr", "runlocal"}:
        raise ValueError(f"unknown config argument '{arg}' (known: simclr, runlocal)")
    c = base_config()
    c.objective.name = "muscall"
    m = c.objective.muscall
    m.embed_dim = 512
    m.tokenizer.update(vocab_size=8000, max_tokens=64)
    m.text.update(width=512, depth=4, heads=8, mlp_dim=2048, dropout=0.1)
    if "simclr" in parts:
        m.update(simclr_weight=0.3, simclr_temperature=0.5)
    else:  # CLMR's waveform chain is for the SimCLR term only
        c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
    c.model.name = "shortchunk_resnet"
    c.model.logmel.n_mels = 128
    c.synth.sample_rate = 16000
    c.data.crop_samples = 160000  # 10 s
    c.data.worker_count = 8
    c.optimizer.update(
        name="adamw", learning_rate=5e-5, weight_decay=0.2, warmup_steps=1000, schedule="cosine"
    )
    c.batch_size = 256
    c.total_steps = 100_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000
    if "runlocal" in parts:
        runlocal_language(c, "muscall")
        m.embed_dim = 64
        m.projector_dims = (64, 32)
        m.text.update(width=64, depth=2, heads=4, mlp_dim=128, dropout=0.0)
    return c
