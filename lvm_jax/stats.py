"""Summaries of repeated runs (seeds): the median with a 95 % bootstrap interval.

Every experiment that reports a figure over seeds uses `summarise`, so that `results.json`
files share one layout: {"median", "ci95": [lo, hi], "values", "n"}.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def median_ci(values: Sequence[float], level: float = 0.95, n_boot: int = 10_000,
              seed: int = 0) -> tuple[float, float]:
  """Percentile-bootstrap interval of the median of `values` (NaNs dropped).

  With 3 values the interval spans at most their range; with one, it is that value twice.
  Deterministic for a given `seed`.
  """
  v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
  if v.size == 0:
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  medians = np.median(v[rng.integers(0, v.size, size=(n_boot, v.size))], axis=1)
  alpha = (1.0 - level) / 2.0
  lo, hi = np.quantile(medians, [alpha, 1.0 - alpha])
  return float(lo), float(hi)


def summarise(values: Sequence[float], level: float = 0.95) -> dict:
  """{"median", "ci95": [lo, hi], "values", "n"} of one figure over seeds (NaNs kept in values)."""
  vals = [float(x) for x in values]
  finite = [x for x in vals if np.isfinite(x)]
  lo, hi = median_ci(vals, level)
  return {"median": float(np.median(finite)) if finite else float("nan"), "ci95": [lo, hi],
          "values": vals, "n": len(finite)}
