"""Fields -> network-scale tiles of one compiled shape -> detections merged in field pixels.

A field (H, W, 3) nanomaggies is first brought to the network's pixel scale and normalisation
(`prepare_field`: the checkpoint's `Preprocessing`; mode "fixed" with crop_size c and out_size s
means the network saw c survey pixels as s, so the field is resampled by s / c with the same
anti-aliased resize, then asinh-stretched), then cut into `tile` x `tile` tiles (tile = the
model's img_size) with `overlap` pixels shared by neighbours; the last tile of a row or column is
aligned to the field's edge, and a field smaller than a tile is zero-padded. Every tile goes
through one jitted predict of a fixed batch (padded), returning a static top-k per tile.

Merging (`merge_detections`): detections from all tiles, mapped to field coordinates, are
clustered greedily by score: a detection joins a cluster when its IoU with the cluster's leader
is >= `iou_threshold` or its intersection covers >= `cover_threshold` of the smaller box (a lens
cut by a tile border is seen whole in the neighbour tile and clipped here). A cluster's box is the
score-weighted mean of its members that do not touch an internal tile edge (all members if every
one does); its score is the members' maximum. Instance masks come from the foreground
probability stitched over tiles (mean where tiles overlap) and cropped to each merged box.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lvm_jax.data import preprocess
from lvm_jax.detect import model as model_lib


def network_scale(prep: preprocess.Preprocessing) -> float:
  """Survey pixels per network pixel: crop_size / out_size in mode 'fixed', else 1."""
  if prep.mode == "fixed" and prep.crop_size:
    return float(prep.crop_size) / float(prep.out_size)
  return 1.0


def resize_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """(H, W, C) -> (h, w, C) float32 with scikit-image's anti-aliased resize, the settings of
  `preprocess.resize_image` (which only makes squares)."""
  from skimage import transform
  chw = np.moveaxis(np.asarray(image, np.float32), -1, 0)
  out = transform.resize(chw, (chw.shape[0], *shape), anti_aliasing=True)
  return np.ascontiguousarray(np.moveaxis(out, 0, -1), dtype=np.float32)


def prepare_field(image: np.ndarray, prep: preprocess.Preprocessing) -> tuple[np.ndarray, float]:
  """Field (H, W, 3) nanomaggies -> (network-scale image (h, w, 3) float32, survey pixels per
  network pixel)."""
  scale = network_scale(prep)
  out = np.asarray(image, np.float32)
  if scale != 1.0:
    h, w = out.shape[:2]
    out = resize_to(out, (max(1, round(h / scale)), max(1, round(w / scale))))
  if prep.normalisation == "asinh":
    out = preprocess.asinh_stretch(out, prep.asinh_softening)
  return out, scale


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
  """Tile origins along one axis: step tile - overlap, the last aligned to the end."""
  if not 0 <= overlap < tile:
    raise ValueError(f"overlap {overlap} must be in [0, tile={tile})")
  if length <= tile:
    return [0]
  step = tile - overlap
  starts = list(range(0, length - tile, step))
  return starts + [length - tile]


def tile_origins(shape: tuple[int, int], tile: int, overlap: int) -> np.ndarray:
  """(N, 2) tile origins (y0, x0) covering an (H, W) image."""
  ys, xs = tile_starts(shape[0], tile, overlap), tile_starts(shape[1], tile, overlap)
  return np.array([(y, x) for y in ys for x in xs], np.int64)


def cut_tiles(image: np.ndarray, origins: np.ndarray, tile: int) -> np.ndarray:
  """(H, W, C) -> (N, tile, tile, C), zero-padded where the image is smaller than a tile."""
  h, w, c = image.shape
  padded = np.zeros((max(h, tile), max(w, tile), c), np.float32)
  padded[:h, :w] = image
  return np.stack([padded[y:y + tile, x:x + tile] for y, x in origins])


def _touches_internal_edge(boxes, origin, tile, shape, margin: float = 1.0) -> np.ndarray:
  """(D,) bool: box within `margin` px of a tile edge that is not the image's edge."""
  y0, x0 = origin
  h, w = shape
  out = np.zeros(len(boxes), bool)
  if x0 > 0:
    out |= boxes[:, 0] <= x0 + margin
  if y0 > 0:
    out |= boxes[:, 1] <= y0 + margin
  if x0 + tile < w:
    out |= boxes[:, 2] >= x0 + tile - margin
  if y0 + tile < h:
    out |= boxes[:, 3] >= y0 + tile - margin
  return out


def merge_detections(boxes: np.ndarray, scores: np.ndarray, at_edge: np.ndarray,
                     iou_threshold: float = 0.3, cover_threshold: float = 0.6
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Greedy cluster-and-fuse of (D, 4) boxes with (D,) scores; see the module docstring.

  Returns (merged boxes (M, 4), scores (M,)) by descending score.
  """
  from lvm_jax.detect.metrics import box_iou
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  scores = np.asarray(scores, np.float64).reshape(-1)
  order = np.argsort(-scores, kind="mergesort")
  iou = box_iou(boxes, boxes)
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  union = area[:, None] + area[None, :]
  inter = np.where(union > 0, iou * union / (1 + iou), 0.0)
  cover = inter / np.maximum(np.minimum(area[:, None], area[None, :]), 1e-9)
  used = np.zeros(len(boxes), bool)
  out_boxes, out_scores = [], []
  for i in order:
    if used[i]:
      continue
    members = np.nonzero(~used & ((iou[i] >= iou_threshold) | (cover[i] >= cover_threshold)))[0]
    members = np.union1d(members, [i])
    used[members] = True
    clean = members[~at_edge[members]]
    pick = clean if len(clean) else members
    w = scores[pick]
    out_boxes.append((boxes[pick] * w[:, None]).sum(0) / max(w.sum(), 1e-12))
    out_scores.append(scores[members].max())
  return np.array(out_boxes, np.float32).reshape(-1, 4), np.array(out_scores, np.float32)


class TiledDetector:
  """Runs a `LensDetector` over whole fields (one compiled shape: `batch` tiles of img_size)."""

  def __init__(self, detector, params, state, prep: preprocess.Preprocessing,
               overlap: int | None = None, top_k: int = 8, batch: int = 16,
               min_score: float = 0.05):
    import jax
    self.tile = int(detector.img_size)
    self.overlap = self.tile // 4 if overlap is None else int(overlap)
    self.prep, self.top_k, self.batch, self.min_score = prep, int(top_k), int(batch), float(min_score)
    self._params, self._state = params, state

    @jax.jit
    def predict(params, state, tiles):
      outputs, _ = detector.apply(params, state, tiles, train=False)
      return model_lib.decode(outputs, self.top_k)
    self._predict = predict

  def predict_tiles(self, tiles: np.ndarray) -> dict[str, np.ndarray]:
    """(N, T, T, 3) network input -> scores (N, k), boxes (N, k, 4) tile px, mask_prob (N, T, T)."""
    n = len(tiles)
    parts = []
    for a in range(0, n, self.batch):
      chunk = tiles[a:a + self.batch]
      pad = self.batch - len(chunk)
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
      out = self._predict(self._params, self._state, chunk)
      parts.append({k: np.asarray(v)[:self.batch - pad] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
    """Field (H, W, 3) nanomaggies -> {boxes (M, 4) field px, scores (M,), masks (M, H, W) bool,
    mask_prob (H, W)}."""
    net, scale = prepare_field(image, self.prep)
    return detect_prepared(self.predict_tiles, net, scale, image.shape[:2], self.tile, self.overlap,
                           self.min_score)


def detect_prepared(predict_tiles: Callable[[np.ndarray], dict[str, Any]], net: np.ndarray,
                    scale: float, field_shape: tuple[int, int], tile: int, overlap: int,
                    min_score: float = 0.05) -> dict[str, np.ndarray]:
  """Tiles a network-scale image, predicts, merges; returns detections in field pixels.

  `predict_tiles` maps (N, tile, tile, 3) to scores (N, k), boxes (N, k, 4) in tile pixels and
  mask_prob (N, tile, tile); any such function works (the tests use an oracle).
  """
  h, w = net.shape[:2]
  origins = tile_origins((h, w), tile, overlap)
  pred = predict_tiles(cut_tiles(net, origins, tile))
  all_boxes, all_scores, all_edge = [], [], []
  prob_sum = np.zeros((max(h, tile), max(w, tile)), np.float32)
  prob_n = np.zeros_like(prob_sum)
  for t, (y0, x0) in enumerate(origins):
    keep = pred["scores"][t] >= min_score
    b = pred["boxes"][t][keep] + np.array([x0, y0, x0, y0], np.float32)
    b = np.clip(b, 0, [w, h, w, h])
    all_boxes.append(b)
    all_scores.append(pred["scores"][t][keep])
    all_edge.append(_touches_internal_edge(b, (y0, x0), tile, (h, w)))
    prob_sum[y0:y0 + tile, x0:x0 + tile] += pred["mask_prob"][t]
    prob_n[y0:y0 + tile, x0:x0 + tile] += 1
  boxes, scores = merge_detections(np.concatenate(all_boxes), np.concatenate(all_scores),
                                   np.concatenate(all_edge))
  prob = (prob_sum / np.maximum(prob_n, 1))[:h, :w]
  if scale != 1.0:
    prob = resize_to(prob[..., None], tuple(field_shape))[..., 0]
    boxes = boxes * scale
  boxes = np.clip(boxes, 0, [field_shape[1], field_shape[0]] * 2).astype(np.float32)
  return {"boxes": boxes, "scores": scores, "mask_prob": prob,
          "masks": model_lib.instance_masks(prob, boxes)}
