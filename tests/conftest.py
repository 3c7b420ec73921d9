"""Test setup: four simulated CPU devices, Grain's flags, and a tiny synthetic dataset."""

import os
import subprocess
import sys

# Must happen before jax is imported anywhere: the 1-vs-4-device tests need 4 devices.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import absl.flags
import pytest

# Grain reads absl flags; outside absl.app.run they must be marked parsed.
absl.flags.FLAGS.mark_as_parsed()

from jaxmusic.config import base_config  # noqa: E402
from jaxmusic.prepare.synthetic import prepare_synth  # noqa: E402

TINY_RATE = 8000


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long; left out by default, run by .ci/run (-m slow)")


def pytest_collection_modifyitems(config, items):
    # The README's `python -m pytest -q` stays under ten minutes: slow tests run only
    # when asked for with -m (as .ci/run does).
    if config.getoption("markexpr"):
        return
    skip = [i for i in items if "slow" in i.keywords]
    for item in skip:
        items.remove(item)
    config.hook.pytest_deselected(items=skip)


class CompileCounter:
    """Collects JAX's compile events: a check that must come before compiling sees none."""

    def __init__(self):
        self.events = []

    def __call__(self, event, duration, **kw):
        if "compile" in event:
            self.events.append(event)


@pytest.fixture
def compiles():
    import jax

    counter = CompileCounter()
    jax.monitoring.register_event_duration_secs_listener(counter)
    yield counter
    jax.monitoring.unregister_event_duration_listener(counter)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """40 one-second synthetic clips at 8 kHz."""
    out = tmp_path_factory.mktemp("tiny_synth")
    prepare_synth(out, clips=40, seed=0, sample_rate=TINY_RATE, duration_s=1.0, progress=False)
    return str(out)


def tiny_config(data_dir: str):
    """A 3-block SampleCNN on 729-sample crops: compiles and steps in a blink."""
    c = base_config()
    c.data.dir = data_dir
    c.data.crop_samples = 729
    c.model.samplecnn.first_channels = 8
    c.model.samplecnn.block_channels = (8, 8, 16)
    c.model.samplecnn.final_channels = 16
    c.objective.simclr.projector_dims = (16, 8)
    c.batch_size = 8
    c.total_steps = 5
    c.log_every_steps = 1
    c.checkpoint_every_steps = 100
    c.progress_bar = False
    c.embed.batch_size = 16
    c.probe.max_epochs = 20
    return c


# tiny_config's model and optimizer, as overrides of configs/quickstart.py, for tests
# that run the `jaxmusic` command in subprocesses.
TINY_CLI = [
    "--config.data.crop_samples=729",
    "--config.model.samplecnn.first_channels=8",
    "--config.model.samplecnn.block_channels=(8,8,16)",
    "--config.model.samplecnn.final_channels=16",
    "--config.objective.simclr.projector_dims=(16,8)",
    "--config.optimizer.learning_rate=0.0003",
    "--config.batch_size=8",
    "--config.progress_bar=False",
]


def start_cli(*args: str, devices: int = 2) -> subprocess.Popen:
    """Start `python -m jaxmusic.cli ARGS` with `devices` simulated CPU devices."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmusic.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
