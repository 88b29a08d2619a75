"""Ranking metrics in NumPy: average precision, ROC AUC, purity, completeness, intervals.

Conventions follow scikit-learn: tied scores form one threshold (average precision is the
step-wise sum over distinct thresholds; AUC counts a tied positive-negative pair as 1/2).
"""

from __future__ import annotations

import math

import numpy as np


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
  """AP = sum over distinct thresholds t of (R_t - R_prev) * P_t; NaN without positives.

  Args:
    truth: (N,) 0/1.
    scores: (N,) higher means more likely positive.
  """
  truth = np.asarray(truth, bool)
  scores = np.asarray(scores, np.float64)
  n_pos = truth.sum()
  if n_pos == 0:
    return float("nan")
  order = np.argsort(-scores, kind="stable")
  s, t = scores[order], truth[order]
  last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each tie group
  tp = np.cumsum(t)[last]
  precision = tp / (last + 1)
  recall_step = np.diff(np.r_[0, tp]) / n_pos
  return float(np.sum(recall_step * precision))


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
  """Area under the ROC curve (Mann-Whitney U with mid-ranks); NaN with one class only."""
  truth = np.asarray(truth, bool)
  scores = np.asarray(scores, np.float64)
  n_pos, n_neg = truth.sum(), (~truth).sum()
  if n_pos == 0 or n_neg == 0:
    return float("nan")
  order = np.argsort(scores, kind="stable")
  s = scores[order]
  ranks = np.empty(len(s))
  start = np.r_[0, np.nonzero(np.diff(s))[0] + 1]
  end = np.r_[start[1:], len(s)]
  mid = (start + end + 1) / 2.0  # 1-based mid-rank of each tie group
  ranks[order] = np.repeat(mid, end - start)
  u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def purity_completeness(truth: np.ndarray, scores: np.ndarray,
                        threshold: float = 0.5) -> tuple[float, float]:
  """(purity, completeness) of the sample with score > threshold; NaN where undefined."""
  truth = np.asarray(truth, bool)
  selected = np.asarray(scores) > threshold
  tp = np.sum(selected & truth)
  purity = tp / selected.sum() if selected.any() else float("nan")
  completeness = tp / truth.sum() if truth.any() else float("nan")
  return float(purity), float(completeness)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
  """Wilson score interval of a binomial proportion (default 95%); (0, 1) for 0 trials."""
  if trials == 0:
    return 0.0, 1.0
  p = successes / trials
  denom = 1.0 + z * z / trials
  centre = (p + z * z / (2 * trials)) / denom
  half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
  return max(0.0, centre - half), min(1.0, centre + half)


def audit_estimates(labels: np.ndarray, scores: np.ndarray,
                    threshold: float = 0.5) -> dict[str, float]:
  """Purity and completeness of score > threshold estimated from a random audit sample.

  The audit objects are a uniform sample of the unlabelled population, labelled by a human;
  `scores` are their scores when they were shown. Purity is the positive fraction among
  audited objects above threshold; completeness the above-threshold fraction among audited
  positives. Both come with 95% Wilson intervals.

  Args:
    labels: (m,) 0/1 audit labels (unsure ones removed).
    scores: (m,) scores at the time of the audit.
  """
  labels = np.asarray(labels, bool)
  above = np.asarray(scores) > threshold
  out = {"audited": int(len(labels)), "audit_positives": int(labels.sum())}
  for name, k, m in (("purity", np.sum(above & labels), above.sum()),
                     ("completeness", np.sum(above & labels), labels.sum())):
    out[name] = float(k / m) if m else float("nan")
    out[name + "_lo"], out[name + "_hi"] = wilson_interval(int(k), int(m))
  return out


def discovery_curve(is_positive: np.ndarray) -> np.ndarray:
  """(n,) positives found after each of n labels, in labelling order."""
  return np.cumsum(np.asarray(is_positive, np.int64))
