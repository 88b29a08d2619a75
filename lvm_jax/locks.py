"""Exclusive lock files against two writers of one export folder, training workdir or label store.

`hold(path, what)` creates `path` with `O_CREAT | O_EXCL` and writes the holder's pid, host,
start time and command line into it (JSON); it is removed when the block ends. A second writer
finds the file and stops at once with `LockedError`, naming the holder. A lock left by a process
that died (kill -9, a crash) on this same host is taken over with a warning; a lock from another
host is never taken over (its process cannot be checked from here): remove the file by hand once
that process is known to be gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import socket
import sys
import time
from typing import Iterator

from lvm_jax.errors import LockedError

log = logging.getLogger(__name__)

LOCK_NAME = ".lvm-jax.lock"


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by someone else
    return True
  return True


def _holder(path: pathlib.Path) -> dict:
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return {}


def _create(path: pathlib.Path) -> bool:
  record = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(sys.argv)[:500]}
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    json.dump(record, f)
  return True


def acquire(path: str | os.PathLike, what: str) -> pathlib.Path:
  """Takes the lock file `path` for `what` (e.g. "export folder /x"); LockedError if held."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  for _ in range(3):
    if _create(path):
      return path
    holder = _holder(path)
    pid, host = holder.get("pid"), holder.get("host")
    if holder and host == socket.gethostname() and isinstance(pid, int) and pid == os.getpid():
      raise LockedError(f"{what} is already locked by this process ({path})")
    if holder and host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
      log.warning("taking over the stale lock %s of %s (pid %d on %s is gone)", path, what, pid,
                  host)
      print(f"warning: taking over the stale lock {path} (pid {pid} on {host} is gone)",
            file=sys.stderr)
      path.unlink(missing_ok=True)
      continue
    if not holder:  # being written right now, or garbage: look again shortly
      time.sleep(0.05)
      if not _holder(path):
        raise LockedError(f"{what} is locked by {path}, whose holder cannot be read; if no "
                          f"other lvm-jax process uses it, remove that file")
      continue
    raise LockedError(f"{what} is in use by pid {pid} on {host} since {holder.get('started')} "
                      f"({holder.get('command', '')!r}); wait for it to finish, or if that "
                      f"process is gone remove {path}")
  raise LockedError(f"could not take the lock {path} of {what}")


def release(path: str | os.PathLike) -> None:
  path = pathlib.Path(path)
  holder = _holder(path)
  if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def hold(path: str | os.PathLike, what: str, enabled: bool = True) -> Iterator[pathlib.Path]:
  """`acquire` for the block, `release` after it (also on errors); `enabled=False`: no-op."""
  if not enabled:
    yield pathlib.Path(path)
    return
  lock = acquire(path, what)
  try:
    yield lock
  finally:
    release(lock)
