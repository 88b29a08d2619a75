"""Medians with bootstrap intervals over seeds."""

import numpy as np

from lvm_jax import stats


def test_interval_holds_the_median_and_stays_within_the_range():
  values = [0.91, 0.93, 0.95, 0.90, 0.97]
  s = stats.summarise(values)
  assert s["median"] == 0.93 and s["n"] == 5
  lo, hi = s["ci95"]
  assert min(values) <= lo <= s["median"] <= hi <= max(values)
  assert lo < hi


def test_interval_narrows_with_more_seeds():
  rng = np.random.default_rng(0)
  few, many = rng.normal(0, 1, 5), rng.normal(0, 1, 200)
  width = lambda v: np.diff(stats.median_ci(v))[0]
  assert width(many) < width(few)


def test_nans_are_dropped_but_recorded_and_all_nan_gives_nan():
  s = stats.summarise([1.0, float("nan"), 3.0])
  assert s["median"] == 2.0 and s["n"] == 2 and len(s["values"]) == 3
  assert np.isnan(stats.summarise([float("nan")])["median"])
  assert stats.median_ci([0.5]) == (0.5, 0.5)


def test_deterministic_for_a_seed():
  v = [0.1, 0.4, 0.35, 0.2]
  assert stats.median_ci(v, seed=3) == stats.median_ci(v, seed=3)
