#!/usr/bin/env bash
# Training on a Cloud TPU VM slice: runs the same command on every worker with gcloud; each host's
# jax.distributed.initialize() discovers the slice from the TPU metadata (lvm_jax.train.distributed).
#
#   TPU_NAME=my-v5p-64 ZONE=us-east5-a launch/tpu_vm.sh pretrain:lvm_100m gs://b/ckpt \
#       --config.data.files='/mnt/data/*.h5' --config.mesh.shape='[-1,8]'
#   launch/tpu_vm.sh --dry-run pretrain:lvm_100m /tmp/run
set -euo pipefail
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
if [[ $# -lt 2 ]]; then echo "usage: $0 [--dry-run] CONFIG WORKDIR [--config.key=value ...]" >&2; exit 2; fi
CONFIG=$1; WORKDIR=$2; shift 2
TPU_NAME=${TPU_NAME:-lvm-jax}
ZONE=${ZONE:-us-central2-b}

REMOTE=$(printf '%q ' env LVM_JAX_DISTRIBUTED=1 "JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$HOME/.cache/lvm_jax/xla}" \
  lvm-jax train --config "$CONFIG" --workdir "$WORKDIR" "$@")
CMD=(gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "$REMOTE")

if [[ $DRY -eq 1 ]]; then
  printf '%q ' "${CMD[@]}"; echo
  exit 0
fi
exec "${CMD[@]}"
