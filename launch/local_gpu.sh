#!/usr/bin/env bash
# Train on the GPUs of this machine: one process, every chosen GPU on the 'data' axis.
#   launch/local_gpu.sh [--dry-run] [--gpus LIST] CONFIG WORKDIR [--config.KEY=VALUE ...]
# --gpus 0 (one GPU) or 0,2 (some) sets CUDA_VISIBLE_DEVICES; without it, all GPUs.
# e.g. launch/local_gpu.sh --gpus 0 configs/clmr_samplecnn.py runs/clmr --config.data.dir=data/mtat
# Needs a CUDA build of jaxlib: pip install -U "jax[cuda12]" (see JAX's install guide).
# Checks first that JAX sees a GPU, so that a CPU-only jaxlib fails in seconds, not
# after a slow start on the CPU. --dry-run prints the commands, one a line, and runs none.
# Several machines: launch/slurm.sh, or one `jaxmusic train --coordinator ...` per machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=launch/lib.sh
source "$here/lib.sh"

gpus=""
positional=()
while (($#)); do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --gpus) gpus=${2:?--gpus LIST}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
((${#positional[@]} >= 2)) || { usage >&2; exit 2; }
config=${positional[0]} workdir=${positional[1]}
overrides=("${positional[@]:2}")
check_overrides ${overrides[@]+"${overrides[@]}"}
[[ -z $gpus || $gpus =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--gpus takes device numbers like 0 or 0,1, got '$gpus'"
jaxmusic_cmd

# Leave host memory to Grain's workers; let XLA take GPU memory as it needs it.
env=(env XLA_PYTHON_CLIENT_PREALLOCATE=false)
[[ -n $gpus ]] && env+=("CUDA_VISIBLE_DEVICES=$gpus")
run "${env[@]}" "${PYTHON:-python3}" -c \
  "import jax; d = jax.devices(); assert d[0].platform == 'gpu', f'no GPU visible to JAX: {d}'; print(len(d), 'GPU(s)')"
run "${env[@]}" "${JAXMUSIC[@]}" train --config "$config" --workdir "$workdir" ${overrides[@]+"${overrides[@]}"}
