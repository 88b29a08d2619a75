"""`jax.distributed.initialize` from flags or the environment (SLURM, TPU VM, or explicit).

Order of precedence: explicit arguments (`--coordinator`, `--num_processes`, `--process_id`),
then LVM_JAX_COORDINATOR / LVM_JAX_NUM_PROCESSES / LVM_JAX_PROCESS_ID, then JAX's own cluster
detection when LVM_JAX_DISTRIBUTED=1 (set by launch/tpu_vm.sh), SLURM with more than one task
or a TPU slice with several workers (TPU_WORKER_HOSTNAMES). A single process
with none of these stays uninitialised. On CPU with several processes the collectives are Gloo,
set before the backend starts.
"""

from __future__ import annotations

import os

import jax


def _env_int(name: str) -> int | None:
  v = os.environ.get(name)
  return int(v) if v not in (None, "") else None


def _cluster_detected() -> bool:
  if os.environ.get("LVM_JAX_DISTRIBUTED") == "1":  # launch scripts: let JAX find the cluster
    return True
  if _env_int("SLURM_NTASKS") and _env_int("SLURM_NTASKS") > 1 and "SLURM_JOB_ID" in os.environ:
    return True
  workers = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return len([w for w in workers.split(",") if w]) > 1


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_s: int = 300) -> bool:
  """Starts the multi-process runtime when asked or detected; True if it did."""
  coordinator = coordinator or os.environ.get("LVM_JAX_COORDINATOR") or None
  num_processes = num_processes if num_processes is not None else _env_int(
      "LVM_JAX_NUM_PROCESSES")
  process_id = process_id if process_id is not None else _env_int("LVM_JAX_PROCESS_ID")
  explicit = coordinator is not None and num_processes is not None and num_processes > 1
  if not explicit and not _cluster_detected():
    return False
  platforms = os.environ.get("JAX_PLATFORMS", "") or str(jax.config.jax_platforms or "")
  if "cpu" in platforms.split(","):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if explicit:
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s)
  else:
    jax.distributed.initialize(initialization_timeout=timeout_s)
  return True
