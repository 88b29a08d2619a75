"""Provenance recorded in every product (checkpoint, export, label file, report)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from typing import Any

import lvm_jax

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "ml-collections",
             "grain", "astropy", "galsim")


@functools.cache
def git_sha() -> str:
  """The git commit of the lvm-jax source tree, with '-dirty' if it has local changes.

  Returns 'unknown' outside a git checkout (e.g. an installed wheel).
  """
  root = os.path.dirname(os.path.dirname(os.path.abspath(lvm_jax.__file__)))
  try:
    sha = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                         text=True, check=True, timeout=10).stdout.strip()
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    return sha + ("-dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def package_versions() -> dict[str, str]:
  """Versions of the packages that decide numerical results (absent ones omitted)."""
  out = {}
  for name in _PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out


def provenance(**extra: Any) -> dict[str, Any]:
  """A JSON-serialisable provenance record: code version, git SHA, packages, host, time.

  Callers add what they know (config, preprocessing, seeds) as keyword arguments.
  """
  record = {
      "lvm_jax_version": lvm_jax.__version__,
      "git_sha": git_sha(),
      "packages": package_versions(),
      "python": sys.version.split()[0],
      "host": platform.node(),
      "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  record.update(extra)
  return record


def sha256_file(path: str | os.PathLike) -> str:
  """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()
