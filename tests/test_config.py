import subprocess
import sys

import pytest
from conftest import tiny_config

from jaxmusic import config as config_lib
from jaxmusic.config import ConfigError
from jaxmusic.train.trainer import train_and_evaluate


@pytest.mark.parametrize(
    "spec",
    [
        "configs/quickstart.py",
        "configs/quickstart.py:runlocal",
        "configs/clmr_samplecnn.py",
        "configs/clmr_samplecnn.py:runlocal",
    ],
)
def test_shipped_configs_load(spec):
    c = config_lib.load(spec)
    assert c.data.crop_samples % 3 ** (len(c.model.samplecnn.block_channels) + 1) == 0


def test_clmr_config_has_the_paper_values():
    c = config_lib.load("configs/clmr_samplecnn.py")
    assert (c.synth.sample_rate, c.data.crop_samples, c.batch_size) == (22050, 59049, 48)
    assert (c.optimizer.name, c.optimizer.learning_rate) == ("adam", 3e-4)
    assert (c.objective.simclr.projector_dims, c.objective.simclr.temperature) == ((512, 64), 0.5)
    augment = c.augment
    assert (augment.polarity_p, augment.noise_p, augment.gain_p, augment.filter_p) == (0.8, 0.01, 0.3, 0.8)
    assert (augment.delay_p, augment.pitch_p, augment.reverb_p) == (0.3, 0.6, 0.6)
    assert augment.pitch_semitones == (-7.0, 7.0) and augment.delay_ms == (200.0, 500.0)


def test_overrides_are_typed():
    c = config_lib.load(
        "configs/quickstart.py",
        [
            "--config.batch_size=16",
            "--config.optimizer.learning_rate=1",
            "--config.model.samplecnn.block_channels=(8,8)",
        ],
    )
    assert (
        c.batch_size == 16 and c.optimizer.learning_rate == 1.0 and c.model.samplecnn.block_channels == (8, 8)
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.batchsize=16", "unknown config key 'batchsize' \\(did you mean 'batch_size'\\?\\)"),
        ("--config.optimizer.lr=1", "unknown config key 'optimizer.lr'"),
        ("--config.batch_size=big", "cannot parse 'big'"),
        ("--config.batch_size=1.5", "must be int"),
    ],
)
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.load("configs/quickstart.py", [override])


def test_a_typo_inside_a_config_file_is_refused(tmp_path):
    f = tmp_path / "typo.py"
    f.write_text(
        "from jaxmusic.config import base_config\n"
        "def get_config(arg=None):\n    c = base_config()\n    c.optimizer.learnig_rate = 1.0\n    return c\n"
    )
    with pytest.raises(ConfigError, match="unknown config key 'optimizer.learnig_rate'"):
        config_lib.load(str(f))


def test_batch_that_does_not_divide_fails_before_compiling(tiny_data, tmp_path, compiles):
    c = tiny_config(tiny_data)
    c.batch_size = 6
    c.mesh_shape = (4,)
    with pytest.raises(ConfigError, match="batch_size 6 does not divide over 4 devices") as e:
        train_and_evaluate(c, tmp_path)
    assert "\n" not in str(e.value)
    assert compiles.events == []
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("budget", "minutes:999", "data.budget: budget minutes:999 exceeds"),
        ("budget", "weeks:2", "unknown budget 'weeks:2'"),
        ("augment", 1.5, "augment: "),
    ],
)
def test_bad_budget_or_augmentation_fails_before_compiling(
    tiny_data, tmp_path, compiles, key, value, message
):
    c = tiny_config(tiny_data)
    if key == "budget":
        c.data.budget = value
    else:
        c.augment.pitch_p = value
    with pytest.raises(ConfigError, match=message):
        train_and_evaluate(c, tmp_path)
    assert compiles.events == []


def test_crop_that_does_not_fit_the_encoder_fails_before_compiling(tiny_data, tmp_path, compiles):
    c = tiny_config(tiny_data)
    c.data.crop_samples = 700
    with pytest.raises(ConfigError, match="multiples of 81"):
        train_and_evaluate(c, tmp_path)
    assert compiles.events == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--config.batchsize=8"], "jaxmusic: error: unknown config key 'batchsize'"),
        (
            ["--config.batch_size=6", "--config.mesh_shape=(4,)"],
            "jaxmusic: error: batch_size 6 does not divide over 4 devices",
        ),
    ],
)
def test_cli_reports_bad_input_in_one_line(tiny_data, tmp_path, extra, message):
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "PATH": "/usr/bin:/bin"}
    cmd = [
        sys.executable,
        "-m",
        "jaxmusic.cli",
        "train",
        "--config",
        "configs/quickstart.py:runlocal",
        "--workdir",
        str(tmp_path / "w"),
        f"--config.data.dir={tiny_data}",
        "--config.data.crop_samples=19683",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message)


def test_base_config_is_valid_as_it_stands():
    from jaxmusic.models.registry import check_input

    c = config_lib.base_config()
    config_lib.validate(c)
    check_input(c.model, c.data.crop_samples, c.synth.sample_rate)  # SampleCNN takes its crop
    assert c.model.name == "samplecnn" and c.objective.name == "simclr"
