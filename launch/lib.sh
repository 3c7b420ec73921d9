#!/usr/bin/env bash
# Sourced by the launch scripts (not run by itself): option helpers, and the one place
# where commands are run, or printed instead under --dry-run.
#   source "$(dirname "$0")/lib.sh"
# Under --dry-run every command is printed on one line, shell-quoted (printf %q), in the
# order it would run: what is printed can be pasted into a shell as it is.
set -euo pipefail

DRY_RUN=0

dry() { [[ $DRY_RUN == 1 ]]; }

die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# The script's header comment, which is its usage.
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# One shell-quoted line for a command and its arguments.
show() {
  printf '%q' "$1"
  shift
  if (($#)); then printf ' %q' "$@"; fi
  echo
}

# Run a command, or print it under --dry-run.
run() {
  if dry; then show "$@"; else "$@"; fi
}

# Start a command in the background with its output in LOG; its pid is left in $!.
run_bg() {
  local log=$1
  shift
  if dry; then
    printf '%s > %q 2>&1 &\n' "$(show "$@")" "$log"
  else
    "$@" >"$log" 2>&1 &
  fi
}

# Arguments joined into one string a remote or batch shell splits back into the same words.
quote_words() {
  if (($#)); then show "$@"; fi
}

# `jaxmusic train` takes only --config.KEY=VALUE after CONFIG and WORKDIR.
check_overrides() {
  local a
  for a in "$@"; do
    [[ $a == --config.* ]] || die "unexpected argument '$a' (overrides look like --config.KEY=VALUE)"
  done
}

# The jaxmusic command: the installed console script, else this checkout's module.
# The TPU VM software image for an accelerator type's generation (Cloud TPU's runtime
# versions); --version overrides it.
tpu_default_version() {
  case $1 in
    v6e-*) echo v2-alpha-tpuv6e ;;
    v5litepod-* | v5e-*) echo v2-alpha-tpuv5-lite ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    *) echo tpu-ubuntu2204-base ;;
  esac
}

# shellcheck disable=SC2034  # JAXMUSIC is read by the scripts that source this file
jaxmusic_cmd() {
  if command -v jaxmusic >/dev/null 2>&1; then
    JAXMUSIC=(jaxmusic)
  else
    JAXMUSIC=("${PYTHON:-python3}" -m jaxmusic.cli)
  fi
}
