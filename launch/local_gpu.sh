#!/usr/bin/env bash
# Train on the GPUs of this machine: one process, all local GPUs on the 'data' axis.
#   launch/local_gpu.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
# e.g. launch/local_gpu.sh configs/clmr_samplecnn.py runs/clmr --config.data.dir=data/mtat
# Needs a CUDA build of jaxlib: pip install -U "jax[cuda12]" (see JAX's install guide).
set -euo pipefail
config=${1:?usage: launch/local_gpu.sh CONFIG WORKDIR [overrides]}
workdir=${2:?usage: launch/local_gpu.sh CONFIG WORKDIR [overrides]}
shift 2
python -c "import jax; d = jax.devices(); assert d[0].platform == 'gpu', f'no GPU visible to JAX: {d}'; print(len(d), 'GPU(s)')"
# Leave host memory to Grain's workers; let XLA take GPU memory as it needs it.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec jaxmusic train --config "$config" --workdir "$workdir" "$@"
