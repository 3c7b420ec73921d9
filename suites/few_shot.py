"""Few-shot long-tail tagging, as Ma & Lerch (2024) measure it.

Frozen features (an encoder's frames pooled by mean and standard deviation), one
linear layer with a sigmoid, BCE, Adam lr 1e-4, weight decay 1e-4, batch 8, up to 400
epochs with patience 10; N in {2, 5, 15, 35, 50} tags x K in {1, 5, 10, 20} clips per
tag, drawn disjoint across tags with a fixed seed, 10 episodes each; mAP and ROC-AUC
on every test clip carrying one of the N tags. Class tasks get N-way K-shot nearest
centroid. Needs MagnaTagATune prepared and a CLMR checkpoint (trained or converted):

    jaxmusic prepare magnatagatune --in MTAT --out data/magnatagatune --sample-rate 22050
    jaxmusic bench --suite suites/few_shot.py --out runs/bench-few-shot

On a CPU, in minutes, on synthetic music (an encoder trained for 30 steps, the same
encoder at random init, MFCCs):

    jaxmusic bench --suite suites/few_shot.py:runlocal --out /tmp/bench-few-shot
"""

from jaxmusic.evaluate.suite import dataset, embedder, runlocal, suite_schema


def get_config(arg: str | None = None):
    s = suite_schema()
    s.datasets = {"magnatagatune": dataset("data/magnatagatune", tasks=("tags",))}
    s.embedders = {
        "clmr": embedder("checkpoint", workdir="runs/clmr_samplecnn", layer="frames"),
        "random-init": embedder("random_init", config="configs/clmr_samplecnn.py", layer="frames"),
        "mfcc": embedder("handcrafted", features=("mfcc",), window_seconds=2.68),
    }
    s.protocols.full.enabled = False
    s.protocols.few_shot = {
        "n_tags": (2, 5, 15, 35, 50),
        "k_shots": (1, 5, 10, 20),
        "episodes": 10,
        "seed": 0,
    }
    s.probe.update(learning_rates=(1e-4,), weight_decays=(1e-4,), batch_size=8, max_epochs=400, patience=10)
    if arg == "runlocal":
        runlocal(s, "configs/clmr_samplecnn.py:runlocal", layer="frames")
        s.protocols.few_shot.update(n_tags=(2, 5), k_shots=(1, 5), episodes=3)
        s.probe.update(learning_rates=(1e-3,), batch_size=8, max_epochs=40)
    elif arg:
        raise ValueError(f"unknown suite argument '{arg}' (known: runlocal)")
    return s
