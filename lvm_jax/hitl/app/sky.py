"""Sky helpers: near-duplicate groups (same object within a few arcsec) and viewer links."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

VIEWER = "https://www.legacysurvey.org/viewer"


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
  """(N, 3) Cartesian unit vectors of (N,) ra, dec in degrees."""
  ra, dec = np.radians(np.asarray(ra, np.float64)), np.radians(np.asarray(dec, np.float64))
  return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)


def duplicate_groups(ra: np.ndarray | None, dec: np.ndarray | None,
                     radius_arcsec: float) -> np.ndarray:
  """(N,) group of each row: the lowest row within `radius_arcsec` of it (transitively).

  Rows with unknown (NaN) positions, or no positions at all, are their own group.
  """
  if ra is None or dec is None:
    return np.zeros(0, np.int64)
  n = len(ra)
  group = np.arange(n, dtype=np.int64)
  known = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
  if radius_arcsec <= 0 or len(known) < 2:
    return group
  chord = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
  pairs = cKDTree(unit_vectors(ra[known], dec[known])).query_pairs(chord, output_type="ndarray")
  parent = np.arange(n, dtype=np.int64)

  def root(i: int) -> int:
    while parent[i] != i:
      parent[i] = parent[parent[i]]
      i = parent[i]
    return i

  for a, b in known[pairs] if len(pairs) else ():
    ra_, rb = root(int(a)), root(int(b))
    parent[max(ra_, rb)] = min(ra_, rb)
  return np.array([root(i) for i in range(n)], np.int64)


def collapse(rows: list[int], groups: np.ndarray) -> list[tuple[int, list[int]]]:
  """[(shown row, [rows it stands for, itself first])]: one entry per group, in order."""
  if len(groups) == 0:
    return [(r, [r]) for r in rows]
  out: dict[int, tuple[int, list[int]]] = {}
  for r in rows:
    g = int(groups[r])
    if g in out:
      out[g][1].append(r)
    else:
      out[g] = (r, [r])
  return list(out.values())


def viewer_url(ra: float, dec: float, layer: str = "ls-dr10", zoom: int = 16) -> str:
  """The Legacy Survey sky viewer centred on (ra, dec) deg, with a marker (a URL only)."""
  return f"{VIEWER}?ra={ra:.6f}&dec={dec:.6f}&layer={layer}&zoom={zoom}&mark={ra:.6f},{dec:.6f}"


def nearest_rows(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float,
                 count: int) -> np.ndarray:
  """The `count` rows nearest to (ra0, dec0) deg, nearest first (NaN positions last)."""
  v = unit_vectors(ra, dec)
  v0 = unit_vectors(np.array([ra0]), np.array([dec0]))[0]
  cos = np.nan_to_num(v @ v0, nan=-2.0)
  return np.argsort(-cos, kind="stable")[:count]
