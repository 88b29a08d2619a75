"""Detection metrics: COCO-style AP for boxes and masks, completeness, false positives, purity.

AP follows `pycocotools.cocoeval.COCOeval` for one category, all areas, at most `max_dets`
detections per image: detections of each image, by descending score, are matched greedily to the
unmatched ground truth of highest IoU >= t; over all images, precision is made monotone from the
right and read at the 101 recall points 0, 0.01, ..., 1 (0 beyond the highest recall reached); AP
is their mean. AP[.5:.95] averages t = 0.50, 0.55, ..., 0.95. Box IoU uses areas (x1 - x0)(y1 - y0)
as COCO does (pixel edges, no +1); mask IoU counts pixels. An image set without ground truth
gives NaN (COCO's -1). Boxes are (x0, y0, x1, y1) pixels; masks (H, W) bool.

Per image, `detections` is a dict with `boxes` (D, 4), `scores` (D,) and optionally `masks`
(D, H, W) bool; `truth` has `boxes` (K, 4) and optionally `masks` (K, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU matrix (A, B) of boxes a (A, 4) and b (B, 4), (x0, y0, x1, y1)."""
  a = np.asarray(a, np.float64).reshape(-1, 4)
  b = np.asarray(b, np.float64).reshape(-1, 4)
  iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
  ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
  iw, ih = np.clip(iw, 0, None), np.clip(ih, 0, None)
  inter = iw * ih
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  union = area_a[:, None] + area_b[None, :] - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU matrix (A, B) of masks a (A, H, W) and b (B, H, W), bool."""
  a = np.asarray(a, bool).reshape(len(a), -1).astype(np.float32)
  b = np.asarray(b, bool).reshape(len(b), -1).astype(np.float32)
  inter = a @ b.T
  union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _ious(det: Mapping[str, Any], gt: Mapping[str, Any], kind: str) -> np.ndarray:
  if kind == "box":
    return box_iou(det["boxes"], gt["boxes"])
  if kind == "mask":
    return mask_iou(det["masks"], gt["masks"])
  raise ValueError(f"kind must be 'box' or 'mask', got {kind!r}")


def match_image(ious: np.ndarray, threshold: float) -> np.ndarray:
  """COCO's greedy matching for detections already sorted by score: (D,) matched truth index or -1."""
  d, g = ious.shape
  matched = np.full(d, -1)
  taken = np.zeros(g, bool)
  for i in range(d):
    best, m = min(threshold, 1 - 1e-10), -1
    for j in range(g):
      if taken[j] or ious[i, j] < best:
        continue
      best, m = ious[i, j], j
    if m >= 0:
      taken[m] = True
      matched[i] = m
  return matched


def _sorted(det: Mapping[str, Any], max_dets: int) -> tuple[np.ndarray, dict]:
  scores = np.asarray(det["scores"], np.float64).reshape(-1)
  order = np.argsort(-scores, kind="mergesort")[:max_dets]
  out = {k: np.asarray(v)[order] for k, v in det.items() if k in ("boxes", "scores", "masks")}
  return order, out


def average_precision_at(detections: Sequence[Mapping[str, Any]], truths: Sequence[Mapping[str, Any]],
                         threshold: float, kind: str = "box", max_dets: int = 100) -> float:
  """COCO AP at one IoU threshold over a set of images (see module docstring)."""
  if len(detections) != len(truths):
    raise ValueError(f"{len(detections)} detection sets for {len(truths)} images")
  scores, tps = [], []
  n_gt = 0
  for det, gt in zip(detections, truths):
    n_gt += len(gt["boxes"])
    _, det = _sorted(det, max_dets)
    if len(det["scores"]) == 0:
      continue
    ious = _ious(det, gt, kind) if len(gt["boxes"]) else np.zeros((len(det["scores"]), 0))
    matched = match_image(ious, threshold)
    scores.append(det["scores"])
    tps.append(matched >= 0)
  if n_gt == 0:
    return float("nan")
  if not scores:
    return 0.0
  scores, tps = np.concatenate(scores), np.concatenate(tps)
  order = np.argsort(-scores, kind="mergesort")
  tp = np.cumsum(tps[order])
  fp = np.cumsum(~tps[order])
  recall = tp / n_gt
  precision = tp / (tp + fp + np.spacing(1))
  precision = np.maximum.accumulate(precision[::-1])[::-1]
  idx = np.searchsorted(recall, RECALL_POINTS, side="left")
  q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
  return float(q.mean())


def coco_ap(detections, truths, kind: str = "box", max_dets: int = 100) -> dict[str, float]:
  """{"ap50", "ap75", "ap"} (AP[.5:.95]) for boxes or masks."""
  aps = [average_precision_at(detections, truths, t, kind, max_dets) for t in IOU_THRESHOLDS]
  return {"ap50": aps[0], "ap75": aps[5], "ap": float(np.mean(aps))}


def precision_recall(detections, truths, threshold: float = 0.5, kind: str = "box"):
  """(scores, precision, recall) arrays along descending score, for a PR plot."""
  scores, tps, n_gt = [], [], 0
  for det, gt in zip(detections, truths):
    n_gt += len(gt["boxes"])
    _, det = _sorted(det, 10**9)
    if len(det["scores"]) == 0:
      continue
    ious = _ious(det, gt, kind) if len(gt["boxes"]) else np.zeros((len(det["scores"]), 0))
    scores.append(det["scores"])
    tps.append(match_image(ious, threshold) >= 0)
  if not scores:
    return np.zeros(0), np.zeros(0), np.zeros(0)
  scores, tps = np.concatenate(scores), np.concatenate(tps)
  order = np.argsort(-scores, kind="mergesort")
  tp = np.cumsum(tps[order])
  return scores[order], tp / np.arange(1, len(tp) + 1), tp / max(n_gt, 1)


def best_f1_threshold(detections, truths, iou_threshold: float = 0.5,
                      kind: str = "box") -> dict[str, float]:
  """The operating point to choose on validation fields: the score threshold of highest F1.

  Returns {"threshold", "f1", "precision", "recall"}; the threshold is the score of the last
  detection kept (keep scores >= threshold). With no true positive at all, threshold is +inf
  (nothing kept) and f1 0.
  """
  scores, precision, recall = precision_recall(detections, truths, iou_threshold, kind)
  f1 = np.where(precision + recall > 0,
                2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
  if len(f1) == 0 or f1.max() <= 0:
    return {"threshold": float("inf"), "f1": 0.0, "precision": 0.0, "recall": 0.0}
  i = int(np.argmax(f1))  # first maximum: the highest threshold reaching the best F1
  return {"threshold": float(scores[i]), "f1": float(f1[i]), "precision": float(precision[i]),
          "recall": float(recall[i])}


def found_lenses(detections, truths, score_threshold: float,
                 iou_threshold: float = 0.5) -> list[np.ndarray]:
  """Per image, (K,) bool: truth lens k matched (box IoU >= iou_threshold, COCO greedy) by a
  detection scoring >= score_threshold."""
  out = []
  for det, gt in zip(detections, truths):
    keep = np.asarray(det["scores"]) >= score_threshold
    sub = {k: np.asarray(v)[keep] for k, v in det.items() if k in ("boxes", "scores", "masks")}
    _, sub = _sorted(sub, 10**9)
    found = np.zeros(len(gt["boxes"]), bool)
    if len(sub["scores"]) and len(gt["boxes"]):
      m = match_image(box_iou(sub["boxes"], gt["boxes"]), iou_threshold)
      found[m[m >= 0]] = True
    out.append(found)
  return out


def completeness_by(found: np.ndarray, values: np.ndarray, edges: Sequence[float]) -> list[dict]:
  """Completeness per bin of `values` (e.g. theta_E arcsec, arc S/N).

  Returns [{lo, hi, n, found, completeness}], bins [lo, hi); NaN completeness for empty bins."""
  found, values = np.asarray(found, bool), np.asarray(values, np.float64)
  rows = []
  for lo, hi in zip(edges[:-1], edges[1:]):
    inside = (values >= lo) & (values < hi)
    n = int(inside.sum())
    rows.append(dict(lo=float(lo), hi=float(hi), n=n, found=int(found[inside].sum()),
                     completeness=float(found[inside].mean()) if n else float("nan")))
  return rows


def purity_completeness(detections, truths, score_threshold: float,
                        iou_threshold: float = 0.5) -> dict[str, float]:
  """At a score threshold: true/false positives, purity TP / (TP + FP), completeness TP / N_lens."""
  found = found_lenses(detections, truths, score_threshold, iou_threshold)
  tp = int(sum(f.sum() for f in found))
  n_det = int(sum((np.asarray(d["scores"]) >= score_threshold).sum() for d in detections))
  n_gt = int(sum(len(g["boxes"]) for g in truths))
  return dict(threshold=float(score_threshold), tp=tp, fp=n_det - tp, n_lenses=n_gt,
              purity=tp / n_det if n_det else float("nan"),
              completeness=tp / n_gt if n_gt else float("nan"))


def false_positives_per_10k(detections, n_galaxies: Sequence[int], score_threshold: float) -> dict:
  """On lens-free fields: detections scoring >= threshold per 10,000 (bright) galaxies."""
  fp = int(sum((np.asarray(d["scores"]) >= score_threshold).sum() for d in detections))
  n = int(np.sum(n_galaxies))
  return dict(threshold=float(score_threshold), false_positives=fp, n_galaxies=n,
              per_10k=1e4 * fp / n if n else float("nan"))
