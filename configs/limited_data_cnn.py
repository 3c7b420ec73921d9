"""The limited-data paper's CNNs, trained supervised or contrastively on a budget of
MagnaTagATune (Plachouras, Benetos and Pauwels, "Learning music audio representations
with limited data", 2025).

Argument: `MODEL,OBJECTIVE[,runlocal]` with MODEL `vggish` (jaxmusic's `fcn`: 3.7M
parameters, 128-bin log-mel, 3.75 s) or `musicnn` (12M, 96 bins, 3 s), and OBJECTIVE
`supervised` (BCE on the top-50 tags) or `contrastive` (SimCLR with CLMR's waveform
augmentation chain, on log-mel). CLMR's SampleCNN, the paper's fourth CNN, is
configs/clmr_samplecnn.py. The paper's budgets are nested subsets with K
single-genre clips for each of ten genres, K in 1, 2, 5, 10, 20, 50, 100 (about 5
to 500 minutes), plus the full split:

    jaxmusic train --config configs/limited_data_cnn.py:vggish,supervised \\
        --config.data.dir=MTAT --config.data.budget=per_class:tags:10 --workdir W

then `jaxmusic embed` and `jaxmusic probe`, beside `embed --random-init` (the paper's
untrained baseline). The paper finds untrained or briefly trained models close to
fully trained ones on some tasks, and every model fragile to added noise.

`:MODEL,OBJECTIVE,runlocal` is a narrow variant on the built-in synthetic music (no
budget), a minute on a CPU.
"""

from jaxmusic.config import base_config, runlocal_logmel

MODELS = {"vggish": ("fcn", 60000, 128), "musicnn": ("musicnn", 48000, 96)}
OBJECTIVES = ("supervised", "contrastive")


def get_config(arg: str | None = None):
    parts = (arg or "").split(",")
    if (
        len(parts) not in (2, 3)
        or parts[0] not in MODELS
        or parts[1] not in OBJECTIVES
        or parts[2:]
        not in (
            [],
            ["runlocal"],
        )
    ):
        raise ValueError(
            f"argument '{arg}' must be MODEL,OBJECTIVE[,runlocal] with MODEL in {sorted(MODELS)} "
            f"and OBJECTIVE in {list(OBJECTIVES)}, e.g. vggish,supervised"
        )
    model, objective, local = parts[0], parts[1], parts[2:] == ["runlocal"]
    name, crop, mels = MODELS[model]
    c = base_config()
    c.model.name = name
    c.model.logmel.n_mels = mels
    c.synth.sample_rate = 16000
    c.data.crop_samples = crop
    c.data.worker_count = 8
    c.optimizer.name = "adam"
    c.optimizer.warmup_steps = 1000
    c.optimizer.schedule = "cosine"
    c.total_steps = 100_000
    c.log_every_steps = 100
    c.checkpoint_every_steps = 5000
    c.eval.every_steps = 5000
    if objective == "supervised":
        c.objective.name = "supervised"
        c.objective.supervised.task = "tags"
        c.augment.polarity_p = c.augment.noise_p = c.augment.gain_p = c.augment.filter_p = 0.0
        c.optimizer.learning_rate = 1e-4
        c.batch_size = 16
    else:
        c.objective.name = "simclr"
        c.model[name].dropout = 0.0
        c.augment.delay_p, c.augment.pitch_p, c.augment.reverb_p = 0.3, 0.6, 0.6
        c.optimizer.learning_rate = 3e-4
        c.batch_size = 48
    if local:
        runlocal_logmel(c)
        c.objective.simclr.projector_dims = (32, 16)
        c.augment.delay_p = c.augment.pitch_p = c.augment.reverb_p = 0.0
        c.optimizer.learning_rate = 1e-3
        c.optimizer.warmup_steps = 5
        if name == "fcn":
            c.model.fcn.update(
                channels=(8, 16, 16), freq_pools=(2, 2, 2), time_pools=(2, 2, 2), embedding_dim=32
            )
        else:
            c.model.musicnn.update(
                filter_factor=0.125, temporal_widths=(16, 8), midend_filters=8, dense_units=16
            )
        c.model[name].dropout = 0.0
    return c
