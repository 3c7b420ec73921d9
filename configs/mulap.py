"""MuLaP: music representations from weak language supervision (Manco et al., "Learning
music audio representations via weak language supervision", ICASSP 2022).

An audio backbone (here the short-chunk ResNet on 128-bin log-mel at 16 kHz; any
registered encoder with `frames` works) and the caption's token embeddings feed a
joint transformer trained by masked language modelling of the caption conditioned on
the audio and by audio-text matching with in-batch hard negatives (see
jaxmusic/objectives/mulap.py); `:simclr` adds an audio-only SimCLR term. The audio
backbone alone is then what `embed` and the probes see, as in the paper's transfer to
classification and regression. DATA is a captioned dataset:

    jaxmusic train --config configs/mulap.py --config.data.dir=DATA --workdir W
    jaxmusic embed --workdir W --data MIR_DATASET --out E && jaxmusic probe --embeddings E
    jaxmusic language --workdir W        # retrieval and zero-shot tagging by the matching head

The paper compares the backbone's probes with the same backbone trained supervised,
contrastive audio-only and cross-modal; suites/paradigms.py runs that comparison.

`:runlocal` (or `:simclr,runlocal`) is a narrow variant on the built-in synthetic
music's captions, a few minutes on a CPU.
"""

from jaxmusic.config import base_config, runlocal_language


def get_config(arg: str | None = None):
    parts = [p for p in (arg or "").split(",") if p]
    if set(parts) - {"simclr", "runlocal"}:
        raise ValueError(f"unknown config argument '{arg}' (known: simclr, runlocal)")
    c = base_config()
    c.objective.name = "mulap"
    m = c.objective.mulap
    m.update(width=768, depth=4, heads=12, mlp_dim=3072, dropout=0.1)
    m.tokenizer.update(vocab_size=8000, max_tokens=64)
    if "simclr" in parts:
        m.update(simclr_weight=0.3, simclr_temperature=0.5)
    else:
        c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
    c.model.name = "shortchunk_resnet"
    c.model.logmel.n_mels = 128
    c.synth.sample_rate = 16000
    c.data.crop_samples = 160000  # 10 s: the backbone gives 5 frames
    c.data.worker_count = 8
    c.optimizer.update(
        name="adamw", learning_rate=1e-4, weight_decay=0.01, warmup_steps=1000, schedule="cosine"
    )
    c.batch_size = 128
    c.total_steps = 100_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000
    if "runlocal" in parts:
        runlocal_language(c, "mulap")
        m.update(width=64, depth=2, heads=4, mlp_dim=128, dropout=0.0, projector_dims=(64, 32))
    return c
