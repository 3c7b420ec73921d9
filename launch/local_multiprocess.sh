#!/usr/bin/env bash
# Run N `jaxmusic train` processes on this machine as one multi-process JAX job, the way
# N hosts of a cluster run (one runtime through a coordinator on 127.0.0.1), to try
# multi-host code paths without a cluster.
#   launch/local_multiprocess.sh [--dry-run] [-n N] [--devices-per-process K] [--port P]
#       [--log-dir DIR] CONFIG WORKDIR [--config.KEY=VALUE ...]
# -n N                    processes (default 2), ids 0..N-1, process 0 hosts the coordinator
# --devices-per-process K simulated CPU devices in each process
#                         (XLA_FLAGS=--xla_force_host_platform_device_count=K)
# --port P                the coordinator's port (default 12355)
# --log-dir DIR           one log per process, DIR/process-I.log (default WORKDIR/logs)
# The processes run on the CPU (JAX_PLATFORMS=cpu unless set). Waits for all of them; if
# one fails the others are stopped (they would wait on it), its log is named, and the
# exit code is 1. --dry-run prints the commands, one a line, and runs none.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=launch/lib.sh
source "$here/lib.sh"

n=2 devices="" port=12355 log_dir=""
positional=()
while (($#)); do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    -n | --num-processes) n=${2:?-n N}; shift ;;
    --devices-per-process) devices=${2:?--devices-per-process K}; shift ;;
    --port) port=${2:?--port P}; shift ;;
    --log-dir) log_dir=${2:?--log-dir DIR}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
((${#positional[@]} >= 2)) || { usage >&2; exit 2; }
config=${positional[0]} workdir=${positional[1]}
overrides=("${positional[@]:2}")
check_overrides ${overrides[@]+"${overrides[@]}"}
[[ $n =~ ^[1-9][0-9]*$ ]] || die "-n must be a positive integer, got '$n'"
[[ -z $devices || $devices =~ ^[1-9][0-9]*$ ]] || die "--devices-per-process must be a positive integer, got '$devices'"
[[ $port =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"
log_dir=${log_dir:-$workdir/logs}
((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)) || dry || die "needs bash 5.1 or newer (wait -n -p)"
jaxmusic_cmd

env=(env "JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}")
if [[ -n $devices ]]; then
  # Replace, not add to, a device count already in XLA_FLAGS.
  xla_flags=$(sed -E 's/--xla_force_host_platform_device_count=[0-9]+//g' <<<"${XLA_FLAGS:-}" | xargs)
  env+=("XLA_FLAGS=${xla_flags:+$xla_flags }--xla_force_host_platform_device_count=$devices")
fi

run mkdir -p "$log_dir"
pids=()
for ((i = 0; i < n; i++)); do
  run_bg "$log_dir/process-$i.log" "${env[@]}" "${JAXMUSIC[@]}" train --config "$config" --workdir "$workdir" \
    --coordinator "127.0.0.1:$port" --num-processes "$n" --process-id "$i" ${overrides[@]+"${overrides[@]}"}
  dry || pids+=($!)
done
if dry; then
  echo wait
  exit 0
fi

stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT TERM

# A process that ended: a failure is reported and the others are stopped, rather than
# left waiting on it until their heartbeats time out.
failed=""
ended() {
  local i=${index[$1]} status=$2
  unset "index[$1]"
  if ((status == 0)); then
    return
  elif [[ -n $failed ]]; then
    echo "process $i stopped (exit $status)" >&2
  else
    failed=$i
    echo "process $i failed (exit $status): $log_dir/process-$i.log" >&2
    tail -n 20 "$log_dir/process-$i.log" >&2 || true
    stop_all
  fi
}

declare -A index
for i in "${!pids[@]}"; do index[${pids[i]}]=$i; done
while ((${#index[@]})); do
  pid="" status=0
  wait -n -p pid "${!index[@]}" 2>/dev/null || status=$?
  if [[ -n ${pid:-} ]]; then
    ended "$pid" "$status"
    continue
  fi
  # Processes that ended together may already be reaped, which `wait -n` does not
  # report; a plain `wait PID` still returns each one's status.
  for pid in "${!index[@]}"; do
    status=0
    wait "$pid" || status=$?
    ended "$pid" "$status"
  done
done
[[ -z $failed ]] || exit 1
echo "all $n processes finished: logs in $log_dir"
