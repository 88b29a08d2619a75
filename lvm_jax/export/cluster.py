"""The Dask client that HATS writes and LSDB crossmatches run on.

    with dask_client() as client:                       # a local cluster on this machine
      ...
    with dask_client("tcp://10.0.0.5:8786") as client:  # an existing scheduler
      ...

A local cluster has `workers` processes of one thread each (default: min(4, CPU count)) and a
per-worker memory limit (`memory_limit`, e.g. "2GiB"; Dask spills to disk at 60% of it and
pauses a worker at 80%), so the peak memory of a job is about workers x memory_limit whatever
the catalogue size. Its scratch space is `local_directory` (default: a temporary folder).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


def default_workers() -> int:
  return max(1, min(4, os.cpu_count() or 1))


@contextlib.contextmanager
def dask_client(address: str | None = None, *, workers: int | None = None,
                memory_limit: str | None = None, local_directory: str | None = None,
                processes: bool = True) -> Iterator:
  """A `distributed.Client` on `address`, or on a new local cluster closed on exit."""
  from distributed import Client, LocalCluster  # pylint: disable=g-import-not-at-top
  if address:
    with Client(address) as client:
      yield client
    return
  kwargs = {"memory_limit": memory_limit} if memory_limit else {}
  with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                    processes=processes, dashboard_address=None,
                    local_directory=local_directory, **kwargs) as cluster:
    with Client(cluster) as client:
      yield client


def add_arguments(parser) -> None:
  """`--dask-address`, `--dask-workers`, `--dask-memory-limit` on a sub-command's parser."""
  parser.add_argument("--dask-address", default=None,
                      help="connect to this Dask scheduler (e.g. tcp://host:8786) instead of "
                           "starting a local cluster")
  parser.add_argument("--dask-workers", type=int, default=None,
                      help="workers of the local cluster (default min(4, CPU count))")
  parser.add_argument("--dask-memory-limit", default=None,
                      help="memory limit per local worker, e.g. 2GiB (default: the machine's "
                           "memory shared by the workers)")


def from_args(args) -> contextlib.AbstractContextManager:
  """`dask_client` from the options that `add_arguments` adds."""
  return dask_client(args.dask_address, workers=args.dask_workers,
                     memory_limit=args.dask_memory_limit)
