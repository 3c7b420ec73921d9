#!/usr/bin/env bash
# Ask for Cloud TPU capacity through a queued resource, which waits until the capacity
# is there (the way to get spot or large slices), then train on it with cloud_tpu.sh.
#   launch/tpu_queued.sh [--dry-run] create --name NAME --zone ZONE --accelerator-type A [--version V] [--spot] [--node-count K]
#   launch/tpu_queued.sh [--dry-run] status|delete --name NAME --zone ZONE
# create  gcloud compute tpus queued-resources create NAME --node-id NAME ... (one slice),
#         or --node-count K --node-prefix NAME (K slices, multislice)
# status  describe the request: it is ready when its state is ACTIVE
# delete  delete the request and its nodes
# Once ACTIVE, the node is an ordinary TPU VM:
#   launch/cloud_tpu.sh copy|setup|train --name NAME --zone ZONE --accelerator-type A CONFIG WORKDIR ...
# --dry-run prints the commands, one a line, and runs none.
#
# Multislice (--node-count K > 1): K slices joined over the data-centre network.
# - The queued resource creates K nodes named from the prefix (list them with
#   `gcloud compute tpus tpu-vm list --zone ZONE`) and
#   gives each host the MEGASCALE_* settings (MEGASCALE_COORDINATOR_ADDRESS,
#   MEGASCALE_NUM_SLICES, MEGASCALE_SLICE_ID) in its TPU environment. JAX reads them
#   (its TPU cluster detection looks in the environment, then the metadata server), so
#   `jaxmusic train --distributed` on every host of every slice joins one runtime of
#   K x hosts-per-slice processes; jaxmusic also joins by itself when MEGASCALE_NUM_SLICES
#   in the environment is above 1.
# - Run cloud_tpu.sh copy/setup/train once per node (--name NODE): each
#   call starts all workers of that node; give them the same CONFIG, WORKDIR and overrides.
# - jaxmusic's 'data' mesh axis then spans all devices of all slices: the global batch
#   is split across slices, and the gradient all-reduce crosses the slower network
#   between slices once per step. Keep batch_size a multiple of the device count.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=launch/lib.sh
source "$here/lib.sh"

name="" zone="" accel="" version="" spot=0 nodes=1
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
    --node-count) nodes=${2:?--node-count K}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unexpected argument '$1'" ;;
  esac
  shift
done
[[ -n $name && -n $zone ]] || die "--name NAME and --zone ZONE are needed"
[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--node-count must be a positive integer, got '$nodes'"
qr=(gcloud compute tpus queued-resources)

case $command in
  create)
    [[ -n $accel ]] || die "create needs --accelerator-type (e.g. v5litepod-16)"
    args=("${qr[@]}" create "$name" --zone "$zone" --accelerator-type "$accel"
      --runtime-version "${version:-$(tpu_default_version "$accel")}")
    if ((nodes > 1)); then
      args+=(--node-count "$nodes" --node-prefix "$name")
    else
      args+=(--node-id "$name")
    fi
    ((spot)) && args+=(--spot)
    run "${args[@]}"
    ;;
  status) run "${qr[@]}" describe "$name" --zone "$zone" ;;
  delete) run "${qr[@]}" delete "$name" --zone "$zone" --force --quiet ;;
  *) die "unknown command '$command' (create, status, delete)" ;;
esac
