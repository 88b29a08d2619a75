"""The export manifest: which chunks are finished, written atomically, for exactly-once resume.

A chunk's part file is written to a temporary name, fsynced and renamed before the manifest lists
the chunk, and the manifest itself is replaced the same way, so after a crash at any point the
manifest lists only chunks whose files are complete. A rerun redoes every chunk not listed
(overwriting any half-written file), which gives the rows of an uninterrupted run exactly once.

`manifest.json`: {"schema_version", "fingerprint" (the run's settings; a rerun with other
settings is refused), "chunk_size", "num_chunks", "done" {chunk: {"rows", "rejects"}},
"complete", "summary"}.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Callable, Mapping

from lvm_jax.errors import ResumeError, UserError


class WriteError(UserError, OSError):
  """A file of a product that could not be written (disk full, read-only folder): path named."""


def fsync_dir(directory: pathlib.Path) -> None:
  fd = os.open(directory, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def atomic_write(path: pathlib.Path, write: Callable[[pathlib.Path], None]) -> None:
  """Calls `write(tmp)` then fsyncs tmp, renames it onto `path` and fsyncs the directory."""
  path = pathlib.Path(path)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  try:
    write(tmp)
    with open(tmp, "rb") as f:
      os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
  except OSError as e:  # a full disk, a read-only folder: name the file; the rerun resumes
    try:
      tmp.unlink(missing_ok=True)
    except OSError:
      pass
    raise WriteError(f"cannot write {path}: {e.strerror or e}; free space (or fix the folder) "
                     f"and rerun the same command: finished chunks are kept") from e


class Manifest:
  """The manifest of one export directory; `save()` rewrites it atomically."""

  def __init__(self, path: pathlib.Path, data: dict[str, Any]):
    self.path = pathlib.Path(path)
    self.data = data

  @classmethod
  def open(cls, path: pathlib.Path, fingerprint: Mapping[str, Any], chunk_size: int,
           num_chunks: int, overwrite: bool = False) -> Manifest:
    """Reads the manifest at `path` if it matches `fingerprint`, or starts a fresh one.

    Raises ResumeError (a ValueError) if an existing manifest was made with other settings (unless `overwrite`).
    """
    path = pathlib.Path(path)
    fresh = {"schema_version": 1, "fingerprint": json.loads(json.dumps(dict(fingerprint))),
             "chunk_size": int(chunk_size), "num_chunks": int(num_chunks), "done": {},
             "complete": False, "summary": None}
    if path.exists() and not overwrite:
      data = json.loads(path.read_text())
      if data["fingerprint"] != fresh["fingerprint"] or data["chunk_size"] != chunk_size:
        changed = sorted(k for k in set(data["fingerprint"]) | set(fresh["fingerprint"])
                         if data["fingerprint"].get(k) != fresh["fingerprint"].get(k))
        raise ResumeError(f"{path} belongs to an export with other settings ({changed}); use "
                         f"another --out or --overwrite")
      return cls(path, data)
    return cls(path, fresh)

  def done(self) -> set[int]:
    return {int(k) for k in self.data["done"]}

  def mark_done(self, chunk: int, rows: int, rejects: int) -> None:
    self.data["done"][str(int(chunk))] = {"rows": int(rows), "rejects": int(rejects)}

  def save(self) -> None:
    atomic_write(self.path, lambda tmp: tmp.write_text(json.dumps(self.data, indent=1)))
