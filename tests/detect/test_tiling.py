"""Tiling: tile grids, one compiled shape, merging across tile borders."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.detect import metrics, targets, tiling


def test_tile_starts_cover_the_axis_and_align_the_last_tile():
  assert tiling.tile_starts(192, 64, 16) == [0, 48, 96, 128]
  assert tiling.tile_starts(64, 64, 16) == [0]
  assert tiling.tile_starts(40, 64, 16) == [0]
  for length in (65, 100, 193, 250):
    s = tiling.tile_starts(length, 64, 16)
    assert s[-1] == length - 64 and all(b - a <= 48 for a, b in zip(s, s[1:]))
  with pytest.raises(ValueError):
    tiling.tile_starts(100, 64, 64)


def _oracle(net_boxes, tile, clipped_score=0.95, whole_score=0.9):
  """A perfect detector that sees only its tile: each lens's box intersected with the tile.

  A clipped view scores higher than the whole one, so the merge must prefer the unclipped box
  on its own merits (not by score)."""
  def predict(tiles_and_origins):
    tiles, origins = tiles_and_origins
    k = len(net_boxes)
    scores = np.zeros((len(origins), k), np.float32)
    boxes = np.zeros((len(origins), k, 4), np.float32)
    for t, (y0, x0) in enumerate(origins):
      for j, b in enumerate(net_boxes):
        c = np.array([max(b[0], x0), max(b[1], y0), min(b[2], x0 + tile), min(b[3], y0 + tile)])
        if c[2] > c[0] and c[3] > c[1]:
          inside = np.allclose(c, b)
          scores[t, j] = whole_score if inside else clipped_score
          boxes[t, j] = c - [x0, y0, x0, y0]
    prob = np.zeros((len(origins), tile, tile), np.float32)
    return {"scores": scores, "boxes": boxes, "mask_prob": prob}
  return predict


def test_lens_cut_by_a_tile_border_merges_into_one_detection(monkeypatch):
  tile, overlap = 64, 24
  net = np.zeros((160, 160, 3), np.float32)
  origins = tiling.tile_origins(net.shape[:2], tile, overlap)
  assert 40 in origins[:, 1]  # tiles start at x = 0, 40, 80, 96
  lens = np.array([[60.0, 20.0, 78.0, 38.0]])  # crosses x = 64, the right border of tile x0 = 0
  seen = _oracle(lens, tile)
  calls = {}

  def predict(tiles):
    calls["n"] = len(tiles)
    return seen((tiles, origins))
  out = tiling.detect_prepared(predict, net, 1.0, net.shape[:2], tile, overlap, min_score=0.1)
  assert calls["n"] == len(origins)
  assert len(out["scores"]) == 1
  assert metrics.box_iou(out["boxes"], lens)[0, 0] == pytest.approx(1.0, abs=1e-5)
  # Plain NMS at IoU 0.5 would have kept the clipped piece as a second detection.
  boxes, scores = tiling.merge_detections(
      np.array([[60, 20, 64, 38], [60, 20, 78, 38]], float), np.array([0.95, 0.9]),
      np.array([True, False]), iou_threshold=0.5, cover_threshold=1.1)
  assert len(scores) == 2


def test_separate_lenses_are_not_merged_and_scale_maps_to_field_pixels():
  tile, overlap = 64, 16
  net = np.zeros((128, 128, 3), np.float32)
  origins = tiling.tile_origins(net.shape[:2], tile, overlap)
  lenses = np.array([[10.0, 10.0, 22.0, 22.0], [30.0, 10.0, 42.0, 22.0], [90.0, 90.0, 110.0, 104.0]])
  seen = _oracle(lenses, tile)
  out = tiling.detect_prepared(lambda t: seen((t, origins)), net, 1.5, (192, 192), tile, overlap)
  assert len(out["scores"]) == 3
  iou = metrics.box_iou(out["boxes"], lenses * 1.5)
  assert np.all(iou.max(axis=0) > 0.999)
  assert out["mask_prob"].shape == (192, 192) and out["masks"].shape == (3, 192, 192)


def test_prepare_field_uses_the_pretraining_scale(tiny_prep, small_fields):
  f = small_fields[0]
  net, scale = tiling.prepare_field(f.image, tiny_prep)
  assert scale == 1.5 and net.shape == (107, 107, 3)
  # asinh of the resampled flux: the inverse brings back the mean flux per survey pixel.
  flux = np.sinh(net) * np.array(tiny_prep.asinh_softening)
  assert flux.mean() == pytest.approx(f.image.mean(), rel=0.02, abs=1e-4)


@pytest.mark.parametrize("k,flip", [(k, f) for k in range(4) for f in (False, True)])
def test_dihedral_augmentation_moves_boxes_with_the_mask(k, flip):
  t = 16
  fg = np.zeros((t, t), bool)
  fg[2:7, 9:15] = True  # box (x0, y0, x1, y1) = (9, 2, 15, 7)
  image = np.repeat(fg[..., None], 3, -1).astype(np.float32)
  im, m, b = targets.augment(image, fg, np.array([[9, 2, 15, 7]], np.float32), k, flip)
  ys, xs = np.nonzero(m)
  np.testing.assert_array_equal(b[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
  np.testing.assert_array_equal(im[..., 0] > 0, m)
