#!/usr/bin/env bash
# Train on a Cloud TPU VM, single-host (v4-8, v5litepod-8, v6e-8) or a multi-host slice
# (v4-32, v5litepod-16, ...), from this checkout.
#   launch/cloud_tpu.sh [--dry-run] COMMAND --name NAME --zone ZONE [options] [CONFIG WORKDIR [--config.KEY=VALUE ...]]
# Commands, in the order `all` runs them:
#   create   gcloud compute tpus tpu-vm create (--accelerator-type A [--version V] [--spot])
#   copy     tar this checkout, scp it to every worker, unpack it in ~/jaxmusic
#   setup    on every worker: a venv in ~/jaxmusic-venv with jaxmusic and JAX's TPU build
#   train    on every worker, in the background: jaxmusic train --config CONFIG --workdir WORKDIR
#            [overrides]; each worker logs to ~/jaxmusic-train-$(hostname).log. On a
#            multi-host slice (from --accelerator-type, or asked of gcloud) it adds
#            --distributed: JAX finds the slice's coordinator through the metadata server.
#   logs     follow one worker's log (--worker I, default 0)
#   delete   delete the VM
#   all      create, copy, setup, train
# e.g. launch/cloud_tpu.sh all --name jm --zone us-central2-b --accelerator-type v4-32 --spot \
#        configs/clmr_samplecnn.py /mnt/bucket/runs/clmr --config.data.dir=/mnt/bucket/mtat
# --dry-run prints the commands, one a line, and runs none. Use gcloud's default project
# (gcloud config set project P, or CLOUDSDK_CORE_PROJECT=P). WORKDIR and the data must be
# where every worker sees them (a gcsfuse-mounted bucket, or gs://): each host reads its
# own slice of the data, and checkpoints are written by all hosts together. Running
# `train` again resumes from WORKDIR's newest checkpoint; queued resources and
# multislice: launch/tpu_queued.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=launch/lib.sh
source "$here/lib.sh"

name="" zone="" accel="" version="" spot=0 worker=0
positional=()
(($#)) || { usage >&2; exit 2; }
command=$1
shift
[[ $command == -h || $command == --help ]] && { usage; exit 0; }
while (($#)); do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --name) name=${2:?--name NAME}; shift ;;
    --zone) zone=${2:?--zone ZONE}; shift ;;
    --accelerator-type) accel=${2:?--accelerator-type TYPE}; shift ;;
    --version) version=${2:?--version RUNTIME}; shift ;;
    --spot) spot=1 ;;
    --worker) worker=${2:?--worker I}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[[ $command == --dry-run ]] && die "put COMMAND first: $0 COMMAND --dry-run ..."
[[ -n $name && -n $zone ]] || die "--name NAME and --zone ZONE are needed"
tpu=(gcloud compute tpus tpu-vm)
where=("$name" --zone "$zone")

# Slices larger than 8 (chips or cores, as the type counts them) span several hosts.
is_multi_host() {
  local n=${1##*-}
  [[ $n =~ ^[0-9]+$ ]] || die "cannot read the size of accelerator type '$1'"
  ((n > 8))
}

create() {
  [[ -n $accel ]] || die "create needs --accelerator-type (e.g. v4-8, v5litepod-16)"
  local args=("${tpu[@]}" create "${where[@]}" --accelerator-type "$accel" --version "${version:-$(tpu_default_version "$accel")}")
  ((spot)) && args+=(--spot)
  run "${args[@]}"
}

copy() {
  local repo tgz="${TMPDIR:-/tmp}/jaxmusic-src.tgz"
  repo=$(cd "$here/.." && pwd)
  run tar -C "$repo" --exclude=.git --exclude=.venv --exclude=.ci-venv --exclude=__pycache__ -czf "$tgz" .
  run "${tpu[@]}" scp "$tgz" "$name:~/jaxmusic-src.tgz" --zone "$zone" --worker=all
  # Unpacked over the previous copy, never removed first: a WORKDIR may live under it.
  run "${tpu[@]}" ssh "${where[@]}" --worker=all \
    --command 'mkdir -p ~/jaxmusic && tar -C ~/jaxmusic -xzf ~/jaxmusic-src.tgz'
}

setup() {
  run "${tpu[@]}" ssh "${where[@]}" --worker=all --command \
    'set -e; python3 -m venv ~/jaxmusic-venv; ~/jaxmusic-venv/bin/pip install -q -U pip; ~/jaxmusic-venv/bin/pip install -q -e ~/jaxmusic "jax[tpu]"'
}

train() {
  ((${#positional[@]} >= 2)) || die "train needs CONFIG WORKDIR [--config.KEY=VALUE ...]"
  local config=${positional[0]} workdir=${positional[1]} overrides=("${positional[@]:2}")
  check_overrides ${overrides[@]+"${overrides[@]}"}
  if [[ -z $accel ]]; then
    dry && die "train --dry-run needs --accelerator-type (it decides --distributed)"
    accel=$("${tpu[@]}" describe "${where[@]}" --format='value(acceleratorType)')
    accel=${accel##*/}
  fi
  local args=(jaxmusic train --config "$config" --workdir "$workdir")
  is_multi_host "$accel" && args+=(--distributed)
  # Overrides come last so that they win, including over progress_bar.
  args+=(--config.progress_bar=False ${overrides[@]+"${overrides[@]}"})
  # The remote shell splits this string back into exactly these words; the log name
  # is expanded there, so that each worker writes its own.
  local remote
  remote="cd ~/jaxmusic && source ~/jaxmusic-venv/bin/activate && nohup $(quote_words "${args[@]}")"
  # shellcheck disable=SC2016  # $(hostname) is for the worker's shell
  remote+=' > ~/jaxmusic-train-$(hostname).log 2>&1 < /dev/null & echo "$(hostname): logging to ~/jaxmusic-train-$(hostname).log"'
  run "${tpu[@]}" ssh "${where[@]}" --worker=all --command "$remote"
}

logs() {
  # shellcheck disable=SC2016  # $(hostname) is for the worker's shell
  run "${tpu[@]}" ssh "${where[@]}" "--worker=$worker" --command 'tail -n 200 -F ~/jaxmusic-train-$(hostname).log'
}

delete() {
  run "${tpu[@]}" delete "${where[@]}" --quiet
}

case $command in
  create | copy | setup | train | logs | delete) "$command" ;;
  all) create && copy && setup && train ;;
  *) die "unknown command '$command' (create, copy, setup, train, logs, delete, all)" ;;
esac
