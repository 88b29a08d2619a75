#!/usr/bin/env bash
# Train on this machine (CPU or its local GPUs/TPU chips): sets the environment, calls lvm-jax train.
#
#   launch/local.sh [--dry-run] CONFIG WORKDIR [--config.key=value ...]
#   launch/local.sh pretrain:tiny /tmp/tiny_run --config.data.files='/tmp/tiny_survey/*.h5'
#
# CPU_DEVICES=N splits the CPU into N fake devices (tests the sharded path on a laptop).
set -euo pipefail
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
if [[ $# -lt 2 ]]; then echo "usage: $0 [--dry-run] CONFIG WORKDIR [--config.key=value ...]" >&2; exit 2; fi
CONFIG=$1; WORKDIR=$2; shift 2

ENV=()
if [[ -n "${CPU_DEVICES:-}" ]]; then
  ENV+=("JAX_PLATFORMS=cpu" "XLA_FLAGS=--xla_force_host_platform_device_count=${CPU_DEVICES}")
fi
ENV+=("JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$HOME/.cache/lvm_jax/xla}")
CMD=(lvm-jax train --config "$CONFIG" --workdir "$WORKDIR" "$@")

if [[ $DRY -eq 1 ]]; then
  printf '%q ' env "${ENV[@]}" "${CMD[@]}"; echo
  exit 0
fi
exec env "${ENV[@]}" "${CMD[@]}"
