#!/usr/bin/env bash
# Train on GPU nodes of a SLURM cluster: write an sbatch script and submit it. Every task
# runs `srun jaxmusic train ... --distributed`; jaxmusic finds the job's coordinator,
# process count and process id in SLURM's environment.
#   launch/slurm.sh [--dry-run] --nodes N --gpus-per-node G [--per host|gpu] [--partition P]
#       [--time HH:MM:SS] [--account A] [--cpus-per-task C] [--job-name J] [--log-dir DIR]
#       [--sbatch-arg ARG ...] CONFIG WORKDIR [--config.KEY=VALUE ...]
# --per gpu  (default) one process per GPU: --ntasks-per-node=G --gpus-per-task=1
# --per host one process per node driving all its GPUs: --ntasks-per-node=1 --gpus-per-node=G
# Both train the same: every GPU of the job is one device on the 'data' axis.
# --log-dir DIR (default slurm-logs) holds the script, DIR/J-JOBID.out, and one log per
# task, DIR/J-JOBID-TASK.log. --sbatch-arg adds any other #SBATCH option (e.g.
# --sbatch-arg=--qos=high). The job runs with the environment and in the directory it
# was submitted from (activate the venv first; relative paths start there); WORKDIR and
# the data must be on a file system every node sees. Resubmitting resumes from
# WORKDIR's newest checkpoint.
# --dry-run prints the sbatch script, then the commands, one a line, and runs none.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=launch/lib.sh
source "$here/lib.sh"

nodes="" gpus="" per=gpu partition="" time_limit="" account="" cpus="" job=jaxmusic log_dir=slurm-logs
extra=() positional=()
while (($#)); do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --nodes) nodes=${2:?--nodes N}; shift ;;
    --gpus-per-node) gpus=${2:?--gpus-per-node G}; shift ;;
    --per) per=${2:?--per host|gpu}; shift ;;
    --partition) partition=${2:?--partition P}; shift ;;
    --time) time_limit=${2:?--time HH:MM:SS}; shift ;;
    --account) account=${2:?--account A}; shift ;;
    --cpus-per-task) cpus=${2:?--cpus-per-task C}; shift ;;
    --job-name) job=${2:?--job-name J}; shift ;;
    --log-dir) log_dir=${2:?--log-dir DIR}; shift ;;
    --sbatch-arg) extra+=("${2:?--sbatch-arg ARG}"); shift ;;
    --sbatch-arg=*) extra+=("${1#--sbatch-arg=}") ;;
    -h | --help) usage; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
((${#positional[@]} >= 2)) || { usage >&2; exit 2; }
config=${positional[0]} workdir=${positional[1]}
overrides=("${positional[@]:2}")
check_overrides ${overrides[@]+"${overrides[@]}"}
[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer, got '$nodes'"
[[ $gpus =~ ^[1-9][0-9]*$ ]] || die "--gpus-per-node must be a positive integer, got '$gpus'"
jaxmusic_cmd

directives=(--job-name="$job" --nodes="$nodes" --output="$log_dir/%x-%j.out")
case $per in
  # Slurm may bind each task to its own GPU; jaxmusic then drives the one GPU the task sees.
  gpu) directives+=(--ntasks-per-node="$gpus" --gpus-per-task=1) ;;
  host) directives+=(--ntasks-per-node=1 --gpus-per-node="$gpus") ;;
  *) die "--per is host or gpu, got '$per'" ;;
esac
[[ -n $partition ]] && directives+=(--partition="$partition")
[[ -n $time_limit ]] && directives+=(--time="$time_limit")
[[ -n $account ]] && directives+=(--account="$account")
[[ -n $cpus ]] && directives+=(--cpus-per-task="$cpus")
directives+=(${extra[@]+"${extra[@]}"})

train=("${JAXMUSIC[@]}" train --config "$config" --workdir "$workdir" --distributed ${overrides[@]+"${overrides[@]}"})
script() {
  echo '#!/usr/bin/env bash'
  local d
  for d in "${directives[@]}"; do echo "#SBATCH $d"; done
  echo 'set -euo pipefail'
  # --kill-on-bad-exit: one failed task ends the step instead of leaving the others
  # waiting on it.
  echo "srun --kill-on-bad-exit=1 --output=$(quote_words "$log_dir/%x-%j-%t.log") $(quote_words "${train[@]}")"
}

file=$log_dir/$job.sbatch
run mkdir -p "$log_dir"
if dry; then
  echo "# $file:"
  script
  echo "# end of $file"
else
  script >"$file"
fi
run sbatch "$file"
