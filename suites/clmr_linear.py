"""CLMR's linear evaluation (Spijkervet & Burgoyne 2021): the frozen SampleCNN's 512-d
embedding, a linear probe on 59,049-sample windows with predictions averaged per clip,
macro ROC-AUC and PR-AUC on MagnaTagATune (the paper: 88.5 / 35.4 with 100 % of the
labels), and the label-limited probes it reports (1 % and 10 % of the labelled
training clips), beside the same encoder at random initialisation. The probe's
learning rate and weight decay are chosen on validation from a grid, over 3 seeds.

    jaxmusic prepare magnatagatune --in MTAT --out data/magnatagatune --sample-rate 22050
    jaxmusic convert clmr --in clmr_checkpoint.pt --out runs/clmr_samplecnn   # or train it
    jaxmusic bench --suite suites/clmr_linear.py --out runs/bench-clmr

`:runlocal`: a SampleCNN trained for 50 steps on synthetic music instead, minutes on a CPU.
"""

from jaxmusic.evaluate.suite import dataset, embedder, runlocal, suite_schema


def get_config(arg: str | None = None):
    s = suite_schema()
    s.datasets = {"magnatagatune": dataset("data/magnatagatune", tasks=("tags",))}
    s.embedders = {
        "clmr": embedder("checkpoint", workdir="runs/clmr_samplecnn"),
        "random-init": embedder("random_init", config="configs/clmr_samplecnn.py"),
    }
    s.protocols.label_limited.fractions = (0.01, 0.1)
    s.probe.update(learning_rates=(1e-4, 3e-4, 1e-3), weight_decays=(0.0, 1e-6, 1e-4), seeds=(0, 1, 2))
    if arg == "runlocal":
        runlocal(s, "configs/clmr_samplecnn.py:runlocal")
        s.protocols.label_limited.fractions = (0.1, 0.5)  # 1 % of 168 clips is one clip
        s.probe.update(learning_rates=(1e-3, 1e-2), weight_decays=(0.0,), seeds=(0, 1), max_epochs=60)
    elif arg:
        raise ValueError(f"unknown suite argument '{arg}' (known: runlocal)")
    return s
