"""Where the project's shared reference data and real DESI cutouts live.

The repository expects `../shared` beside the checkout (CI lays it there). Set
`LVM_JAX_SHARED` to point elsewhere. Nothing here downloads anything.
"""

from __future__ import annotations

import os
import pathlib


def shared_dir() -> pathlib.Path | None:
  """The shared folder, or None when it is absent (e.g. a user's clone)."""
  env = os.environ.get("LVM_JAX_SHARED")
  candidates = [pathlib.Path(env)] if env else []
  repo = pathlib.Path(__file__).resolve().parent.parent
  candidates.append(repo.parent / "shared")
  for c in candidates:
    if (c / "reference").is_dir():
      return c
  return None


def reference_dir() -> pathlib.Path | None:
  d = shared_dir()
  return None if d is None else d / "reference"


def desi_cutouts_dir() -> pathlib.Path | None:
  d = shared_dir()
  return None if d is None else d / "data" / "desi_dr9_south"
