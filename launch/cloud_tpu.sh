#!/usr/bin/env bash
# Train on a single-host Cloud TPU VM (e.g. v4-8, v5litepod-8, v6e-8).
#   launch/cloud_tpu.sh TPU_NAME ZONE ACCELERATOR CONFIG WORKDIR [--config.KEY=VALUE ...]
# Creates the VM if it does not exist, copies this checkout to it, installs jaxmusic
# with JAX's TPU build, and runs `jaxmusic train` there. WORKDIR and the dataset must be
# on the VM's disk or a mounted bucket (gcsfuse); nothing is downloaded by jaxmusic.
# Running the same command again resumes from WORKDIR's newest checkpoint.
# Multi-host slices (v4-16 and up) need every host to join one jax.distributed
# runtime; that launcher lands with multi-host support.
set -euo pipefail
name=${1:?TPU_NAME}; zone=${2:?ZONE}; accel=${3:?ACCELERATOR}; config=${4:?CONFIG}; workdir=${5:?WORKDIR}
shift 5
if ! gcloud compute tpus tpu-vm describe "$name" --zone "$zone" >/dev/null 2>&1; then
  gcloud compute tpus tpu-vm create "$name" --zone "$zone" --accelerator-type "$accel" \
    --version tpu-ubuntu2204-base
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
tar -C "$repo" --exclude .git --exclude '.ci-venv' -czf /tmp/jaxmusic-src.tgz .
gcloud compute tpus tpu-vm scp /tmp/jaxmusic-src.tgz "$name":~/ --zone "$zone"
gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --command "
  set -e; mkdir -p ~/jaxmusic && tar -C ~/jaxmusic -xzf ~/jaxmusic-src.tgz && cd ~/jaxmusic
  python3 -m pip install -q -e . 'jax[tpu]'
  nohup jaxmusic train --config $config --workdir $workdir $* --config.progress_bar=False \
    > ~/train.log 2>&1 &
  echo started: tail -f ~/train.log on $name"
