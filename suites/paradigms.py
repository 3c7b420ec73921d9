"""Supervised against contrastive against language-supervised pre-training, compared by
probes across MIR tasks (McCallum et al. 2022; MuLaP, Manco et al. 2022), with the
references every such comparison needs: the same encoder at random initialisation and
handcrafted features (MFCC, chroma). Linear probes with a learning-rate x weight-decay
grid over 3 seeds, plus the training-free k-NN and nearest-centroid probes; tags
(MagnaTagATune), genre (GTZAN), key (GiantSteps, with the MIREX weighted score),
arousal and valence (emoMusic, R²), instrument and pitch (NSynth). McCallum et al.'s
finding to compare with: supervised is best on most labelling tasks, contrastive keeps
key (GiantSteps 66.7 vs 28.6) and pitch (89.2 vs 79.2); MuLaP's claim to check: a
backbone trained from noisy captions alone (masked language modelling and audio-text
matching) transfers competitively with audio-only pre-training.

    jaxmusic bench --suite suites/paradigms.py --out runs/bench-paradigms

expects the datasets prepared under data/ and the three runs trained with
configs/clmr_samplecnn.py (runs/contrastive), configs/supervised_samplecnn.py
(runs/supervised) and configs/mulap.py on a captioned dataset (runs/mulap). Add
`--suite.protocols.language.enabled=True` to also measure the MuLaP run's zero-shot
tagging from text prompts (and retrieval where a dataset has captions). `:runlocal`
trains all three briefly on synthetic music (tags, style, key, tempo; captions for
MuLaP), minutes on a CPU.
"""

from jaxmusic.evaluate.suite import dataset, embedder, runlocal, suite_schema


def get_config(arg: str | None = None):
    s = suite_schema()
    s.datasets = {
        "magnatagatune": dataset("data/magnatagatune"),
        "gtzan": dataset("data/gtzan"),
        "giantsteps": dataset("data/giantsteps_key"),
        "emomusic": dataset("data/emomusic"),
        "nsynth": dataset("data/nsynth", tasks=("instrument_family", "pitch")),
    }
    s.embedders = {
        "contrastive": embedder("checkpoint", workdir="runs/contrastive"),
        "supervised": embedder("checkpoint", workdir="runs/supervised"),
        "mulap": embedder("checkpoint", workdir="runs/mulap"),
        "random-init": embedder("random_init", config="configs/clmr_samplecnn.py"),
        "mfcc+chroma": embedder("handcrafted", features=("mfcc", "chroma"), window_seconds=2.68),
    }
    s.protocols.knn.k = 10
    s.protocols.centroid.enabled = True
    s.probe.update(learning_rates=(1e-4, 1e-3, 1e-2), weight_decays=(0.0, 1e-4), seeds=(0, 1, 2))
    if arg == "runlocal":
        runlocal(s, "configs/clmr_samplecnn.py:runlocal", trained="contrastive", features=("mfcc", "chroma"))
        s.embedders["supervised"] = embedder(
            "train", config="configs/supervised_samplecnn.py:runlocal", data="synth"
        )
        s.embedders["mulap"] = embedder("train", config="configs/mulap.py:runlocal", data="synth")
        s.probe.update(learning_rates=(1e-3, 1e-2), weight_decays=(0.0,), seeds=(0, 1), max_epochs=60)
    elif arg:
        raise ValueError(f"unknown suite argument '{arg}' (known: runlocal)")
    return s
