"""AP against hand-worked cases and, where it installs, against pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.detect import metrics


def _box_mask(box, shape=(32, 32)):
  m = np.zeros(shape, bool)
  x0, y0, x1, y1 = (int(v) for v in box)
  m[y0:y1, x0:x1] = True
  return m


def test_box_iou_hand_worked():
  iou = metrics.box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
  np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])
  m = metrics.mask_iou(np.stack([_box_mask([0, 0, 2, 2])]), np.stack([_box_mask([1, 1, 3, 3])]))
  np.testing.assert_allclose(m, [[1 / 7]])


def test_ap_hand_worked_tp_fp_tp():
  # 2 lenses; detections by score: hit, miss, hit. Recall .5, .5, 1; precision 1, .5, 2/3
  # -> monotone 1, 2/3, 2/3: 51 recall points at 1, 50 at 2/3.
  truth = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)}]
  det = [{"boxes": np.array([[0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30]], float),
          "scores": np.array([0.9, 0.8, 0.7])}]
  assert metrics.average_precision_at(det, truth, 0.5) == pytest.approx((51 + 50 * 2 / 3) / 101)
  # Swapping the scores of the miss and the second hit gives a perfect ranking.
  det[0]["scores"] = np.array([0.9, 0.6, 0.7])
  assert metrics.average_precision_at(det, truth, 0.5) == pytest.approx(1.0)


def test_best_f1_threshold_hand_worked():
  # 3 lenses; detections by score: hit .9, miss .8, hit .7, miss .6, hit .5.
  # F1 along the ranking: 1/2, 2/5, 2/3, 4/7, 3/4 -> keep all five, threshold 0.5.
  truth = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float)}]
  det = [{"boxes": np.array([[0, 0, 10, 10], [60, 60, 70, 70], [20, 20, 30, 30],
                             [80, 80, 90, 90], [40, 40, 50, 50]], float),
          "scores": np.array([0.9, 0.8, 0.7, 0.6, 0.5])}]
  best = metrics.best_f1_threshold(det, truth)
  assert best["threshold"] == pytest.approx(0.5)
  assert best["f1"] == pytest.approx(0.75)
  assert (best["precision"], best["recall"]) == pytest.approx((0.6, 1.0))
  # hit .9, three misses, hit .5: F1 1/2, 2/5, 1/3, 2/7, 1/2. A tie goes to the higher
  # threshold (fewer detections for the same F1).
  det[0]["boxes"] = det[0]["boxes"][[0, 1, 3, 3, 2]] + np.array([0, 0, 0, 10, 0])[:, None]
  best = metrics.best_f1_threshold(det, truth)
  assert (best["threshold"], best["f1"]) == pytest.approx((0.9, 0.5))
  # Nothing found: keep nothing.
  miss = [{"boxes": np.array([[60, 60, 70, 70]], float), "scores": np.array([0.9])}]
  assert metrics.best_f1_threshold(miss, truth)["threshold"] == float("inf")


def test_ap_iou_threshold_edges_and_empty_sets():
  truth = [{"boxes": np.array([[0, 0, 10, 10]], float)}]
  # IoU exactly 0.5 (box of half the area inside): a match at 0.5, not at 0.55.
  det = [{"boxes": np.array([[0, 0, 10, 5]], float), "scores": np.array([0.5])}]
  assert metrics.average_precision_at(det, truth, 0.5) == pytest.approx(1.0)
  assert metrics.average_precision_at(det, truth, 0.55) == 0.0
  res = metrics.coco_ap(det, truth)
  assert res["ap"] == pytest.approx(0.1)
  none = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0)}]
  assert metrics.average_precision_at(none, truth, 0.5) == 0.0
  assert np.isnan(metrics.average_precision_at(det, [{"boxes": np.zeros((0, 4))}], 0.5))


def test_one_detection_cannot_match_two_lenses_and_duplicates_are_fp():
  truth = [{"boxes": np.array([[0, 0, 10, 10]], float)}]
  det = [{"boxes": np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float), "scores": np.array([0.9, 0.8])}]
  # Hit then duplicate (FP): recall reaches 1 at precision 1.
  assert metrics.average_precision_at(det, truth, 0.5) == pytest.approx(1.0)
  pc = metrics.purity_completeness(det, truth, 0.5)
  assert (pc["tp"], pc["fp"], pc["purity"], pc["completeness"]) == (1, 1, 0.5, 1.0)


def test_completeness_and_false_positive_rates():
  truth = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)}]
  det = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "scores": np.array([0.9, 0.3])}]
  found = metrics.found_lenses(det, truth, 0.5)[0]
  np.testing.assert_array_equal(found, [True, False])
  rows = metrics.completeness_by(found, np.array([1.0, 2.5]), [0.8, 2.0, 3.0])
  assert [r["completeness"] for r in rows] == [1.0, 0.0]
  fp = metrics.false_positives_per_10k(det, [400], 0.25)
  assert fp["false_positives"] == 2 and fp["per_10k"] == pytest.approx(50.0)


def _random_case(rng, n_images=6, shape=(40, 40)):
  dets, truths = [], []
  for _ in range(n_images):
    k = rng.integers(0, 4)
    gb = []
    for _ in range(k):
      x0, y0 = rng.integers(0, 28, 2)
      w, h = rng.integers(4, 12, 2)
      gb.append([x0, y0, min(x0 + w, 40), min(y0 + h, 40)])
    gb = np.array(gb, float).reshape(-1, 4)
    db = []
    for b in gb:
      if rng.random() < 0.8:
        db.append(b + rng.integers(-2, 3, 4))
    for _ in range(rng.integers(0, 3)):
      x0, y0 = rng.integers(0, 30, 2)
      db.append([x0, y0, x0 + rng.integers(3, 10), y0 + rng.integers(3, 10)])
    db = np.clip(np.array(db, float).reshape(-1, 4), 0, 40)
    db = db[(db[:, 2] > db[:, 0]) & (db[:, 3] > db[:, 1])]
    scores = rng.random(len(db))
    gm = np.array([_box_mask(b, shape) for b in gb]).reshape(-1, *shape)
    truths.append({"boxes": gb, "masks": gm})
    dets.append({"boxes": db, "scores": scores,
                 "masks": np.array([_box_mask(b, shape) for b in db]).reshape(-1, *shape)})
  return dets, truths


@pytest.mark.parametrize("kind", ["box", "mask"])
def test_matches_pycocotools(kind):
  pytest.importorskip("pycocotools", reason="pycocotools is in the dev extra; pip install pycocotools")
  from pycocotools import mask as mask_utils
  from pycocotools.coco import COCO
  from pycocotools.cocoeval import COCOeval
  import contextlib, io
  rng = np.random.default_rng(3)
  for trial in range(3):
    dets, truths = _random_case(rng)
    images, anns, results = [], [], []
    for i, (d, g) in enumerate(zip(dets, truths)):
      images.append({"id": i, "width": 40, "height": 40})
      for b, m in zip(g["boxes"], g["masks"]):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode()
        anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                     "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                     "area": float((b[2] - b[0]) * (b[3] - b[1])) if kind == "box" else float(m.sum()),
                     "segmentation": rle})
      for b, s, m in zip(d["boxes"], d["scores"], d["masks"]):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode()
        results.append({"image_id": i, "category_id": 1, "score": float(s),
                        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "segmentation": rle})
    with contextlib.redirect_stdout(io.StringIO()):
      coco = COCO()
      coco.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "lens"}]}
      coco.createIndex()
      cdt = coco.loadRes(results)
      ev = COCOeval(coco, cdt, "bbox" if kind == "box" else "segm")
      ev.params.areaRng = [[0, 1e10]]
      ev.params.areaRngLbl = ["all"]
      ev.evaluate()
      ev.accumulate()
    ours = metrics.coco_ap(dets, truths, kind)
    ref = ev.eval["precision"][:, :, 0, 0, -1]  # (T, R) for maxDets 100
    ref_ap = [np.mean(r[r > -1]) for r in ref]
    assert ours["ap50"] == pytest.approx(ref_ap[0], abs=1e-9), trial
    assert ours["ap"] == pytest.approx(np.mean(ref_ap), abs=1e-9), trial
