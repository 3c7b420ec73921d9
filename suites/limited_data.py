"""Learning from limited data (Plachouras, Benetos & Pauwels 2025): an encoder
pre-trained on nested budgets of MagnaTagATune (K single-genre clips for each of ten
genres, K in 1..100, about 5 to 500 minutes, and the full split), each probed on
tagging and on TinySOL pitch and instrument, drawn against minutes of audio beside
the untrained encoder and handcrafted features (MFCC, chroma, CQT) as flat lines;
and robustness: test audio with white noise at SNR inf, 20, 15, 10, 5, 0 dB and a
-12 dB gain, the probe trained on clean audio. The paper: untrained or briefly
trained models come close on some tasks, handcrafted features win on pitch and
instrument, and every model is fragile to noise. Run linear and MLP probes by
running the suite twice, the second with --suite.probe.model=mlp.

    jaxmusic bench --suite suites/limited_data.py --out runs/bench-limited

`:runlocal`: budgets of 1 and 3 minutes of synthetic music, minutes on a CPU.
"""

from jaxmusic.evaluate.suite import dataset, embedder, runlocal, suite_schema

BUDGETS = (*(f"per_class:tags:{k}" for k in (1, 2, 5, 10, 20, 50, 100)), "full")


def get_config(arg: str | None = None):
    s = suite_schema()
    s.datasets = {
        "magnatagatune": dataset("data/magnatagatune", tasks=("tags",)),
        "tinysol": dataset("data/tinysol"),
    }
    s.embedders = {
        "random-init": embedder("random_init", config="configs/limited_data_cnn.py:vggish,supervised"),
        "mfcc": embedder("handcrafted", features=("mfcc",), window_seconds=3.75),
        "chroma": embedder("handcrafted", features=("chroma",), window_seconds=3.75),
        "cqt": embedder("handcrafted", features=("cqt",), window_seconds=3.75),
    }
    s.protocols.limited_data.update(
        config="configs/limited_data_cnn.py:vggish,supervised", data="magnatagatune", budgets=BUDGETS
    )
    s.protocols.noise.update(snr_db=(float("inf"), 20.0, 15.0, 10.0, 5.0, 0.0), gain_db=(-12.0,))
    s.probe.update(learning_rates=(1e-4, 1e-3), weight_decays=(0.0, 1e-4), seeds=(0, 1, 2))
    if arg == "runlocal":
        runlocal(s, "configs/limited_data_cnn.py:vggish,supervised,runlocal", trained=None)
        s.embedders["chroma"] = embedder("handcrafted", features=("chroma",), window_seconds=1.0)
        s.protocols.limited_data.update(
            config="configs/limited_data_cnn.py:vggish,supervised,runlocal", data="synth",
            budgets=("minutes:1", "minutes:3"),
        )  # fmt: skip
        s.protocols.noise.update(snr_db=(float("inf"), 10.0, 0.0), gain_db=(-12.0,))
        s.probe.update(learning_rates=(1e-3, 1e-2), weight_decays=(0.0,), seeds=(0, 1), max_epochs=60)
    elif arg:
        raise ValueError(f"unknown suite argument '{arg}' (known: runlocal)")
    return s
