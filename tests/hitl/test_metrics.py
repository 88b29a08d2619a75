from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.hitl import (audit_estimates, average_precision, discovery_curve,
                          purity_completeness, roc_auc, wilson_interval)


def _brute_ap(truth, scores):
  """Mean over positives of the precision at that positive's score (ties included)."""
  pos = np.flatnonzero(truth)
  return np.mean([truth[scores >= scores[i]].sum() / (scores >= scores[i]).sum() for i in pos])


def _brute_auc(truth, scores):
  sp, sn = scores[truth], scores[~truth]
  return np.mean([(a > b) + 0.5 * (a == b) for a in sp for b in sn])


@pytest.mark.parametrize("seed", range(6))
def test_ap_and_auc_match_brute_force(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(5, 60))
  truth = rng.random(n) < 0.3
  truth[0], truth[1] = True, False
  scores = np.round(rng.random(n), 1 if seed % 2 else 6)  # odd seeds: many ties
  assert average_precision(truth, scores) == pytest.approx(_brute_ap(truth, scores))
  assert roc_auc(truth, scores) == pytest.approx(_brute_auc(truth, scores))


def test_metrics_against_sklearn_when_installed():
  sk = pytest.importorskip("sklearn.metrics")
  rng = np.random.default_rng(0)
  truth = rng.random(300) < 0.1
  scores = np.round(rng.random(300), 2)
  assert average_precision(truth, scores) == pytest.approx(
      sk.average_precision_score(truth, scores))
  assert roc_auc(truth, scores) == pytest.approx(sk.roc_auc_score(truth, scores))


def test_perfect_and_degenerate_rankings():
  truth = np.array([1, 1, 0, 0], bool)
  assert average_precision(truth, [4, 3, 2, 1]) == 1.0
  assert roc_auc(truth, [4, 3, 2, 1]) == 1.0
  assert roc_auc(truth, [1, 2, 3, 4]) == 0.0
  assert np.isnan(average_precision(np.zeros(4, bool), [1, 2, 3, 4]))


def test_purity_completeness():
  truth = np.array([1, 1, 1, 0, 0, 0], bool)
  scores = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.6])
  purity, completeness = purity_completeness(truth, scores)
  assert purity == pytest.approx(2 / 4) and completeness == pytest.approx(2 / 3)


def test_wilson_interval():
  lo, hi = wilson_interval(0, 10)
  assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
  lo, hi = wilson_interval(5, 10)
  assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
  assert wilson_interval(0, 0) == (0.0, 1.0)


def test_audit_estimates_and_discovery_curve():
  est = audit_estimates(np.array([1, 1, 0, 0, 1]), np.array([0.9, 0.2, 0.8, 0.1, 0.7]))
  assert est["purity"] == pytest.approx(2 / 3) and est["completeness"] == pytest.approx(2 / 3)
  assert est["purity_lo"] < est["purity"] < est["purity_hi"]
  np.testing.assert_array_equal(discovery_curve([0, 1, 1, 0, 1]), [0, 1, 2, 2, 3])
