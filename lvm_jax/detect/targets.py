"""Training tiles and their dense targets for the CenterNet-style head (`lvm_jax.detect.model`).

`field_tiles` brings a `Field` to the network scale (`tiling.prepare_field`) and cuts it into the
same tiles inference uses; each tile keeps the lenses whose box centre lies inside it (boxes
clipped to the tile, network pixels) and the foreground of every lens mask in it. `dense_targets`
turns a batch of tiles' boxes and foregrounds into what the loss reads: a heatmap of Gaussian
peaks (sigma = max(0.7, sqrt(w h) / 6) cells, CenterNet's penalty-reduced focal-loss targets),
and, per object slot, its flat cell index, log size in cells and sub-cell offset.
`augment` applies one of the 8 dihedral transforms to a tile, its foreground and boxes.
"""

from __future__ import annotations

import numpy as np

from lvm_jax.data import preprocess
from lvm_jax.detect import tiling
from lvm_jax.detect.fields import Field
from lvm_jax.detect.model import STRIDE

MAX_OBJECTS = 6


def field_tiles(field: Field, prep: preprocess.Preprocessing, tile: int, overlap: int
                ) -> dict[str, np.ndarray]:
  """{image (N, T, T, 3), foreground (N, T, T) bool, boxes (N, MAX_OBJECTS, 4), n_boxes (N,)}."""
  net, scale = tiling.prepare_field(field.image, prep)
  h, w = net.shape[:2]
  origins = tiling.tile_origins((h, w), tile, overlap)
  boxes = np.asarray(field.boxes, np.float64).reshape(-1, 4) / scale
  if field.num_lenses:
    masks = tiling.resize_to(np.moveaxis(field.masks.astype(np.float32), 0, -1), (h, w)) > 0.5
  else:
    masks = np.zeros((h, w, 0), bool)
  fg = tiling.cut_tiles(masks.any(axis=-1, keepdims=True).astype(np.float32), origins, tile)[..., 0]
  out_boxes = np.zeros((len(origins), MAX_OBJECTS, 4), np.float32)
  n_boxes = np.zeros(len(origins), np.int32)
  centres = (boxes[:, :2] + boxes[:, 2:]) / 2
  for t, (y0, x0) in enumerate(origins):
    inside = ((centres[:, 0] >= x0) & (centres[:, 0] < x0 + tile)
              & (centres[:, 1] >= y0) & (centres[:, 1] < y0 + tile))
    b = boxes[inside][:MAX_OBJECTS] - np.array([x0, y0, x0, y0])
    b = np.clip(b, 0, tile)
    out_boxes[t, :len(b)] = b
    n_boxes[t] = len(b)
  return {"image": tiling.cut_tiles(net, origins, tile), "foreground": fg > 0.5,
          "boxes": out_boxes, "n_boxes": n_boxes}


def augment(image: np.ndarray, fg: np.ndarray, boxes: np.ndarray, k: int, flip: bool):
  """Rotate a (T, T, C) tile by k x 90 degrees (counter-clockwise in array axes) then maybe flip
  left-right; foreground (T, T) and boxes (M, 4) (x0, y0, x1, y1) follow."""
  t = image.shape[0]
  b = boxes.copy()
  for _ in range(k % 4):
    image, fg = np.rot90(image), np.rot90(fg)
    # np.rot90: new[i, j] = old[j, T - 1 - i]  ->  x' = y, y' = T - x
    b = np.stack([b[:, 1], t - b[:, 2], b[:, 3], t - b[:, 0]], axis=-1)
  if flip:
    image, fg = image[:, ::-1], fg[:, ::-1]
    b = np.stack([t - b[:, 2], b[:, 1], t - b[:, 0], b[:, 3]], axis=-1)
  return np.ascontiguousarray(image), np.ascontiguousarray(fg), b.astype(np.float32)


def dense_targets(boxes: np.ndarray, n_boxes: np.ndarray, tile: int) -> dict[str, np.ndarray]:
  """Batch boxes (B, M, 4) tile px, counts (B,) -> heatmap (B, h, w), index (B, M) int32,
  valid (B, M), size (B, M, 2) log cells, offset (B, M, 2) cells, with h = w = tile / STRIDE."""
  b, m = boxes.shape[:2]
  g = tile // STRIDE
  heat = np.zeros((b, g, g), np.float32)
  index = np.zeros((b, m), np.int32)
  valid = np.zeros((b, m), np.float32)
  size = np.zeros((b, m, 2), np.float32)
  offset = np.zeros((b, m, 2), np.float32)
  yy, xx = np.mgrid[:g, :g]
  for i in range(b):
    for j in range(int(n_boxes[i])):
      x0, y0, x1, y1 = boxes[i, j]
      bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
      cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
      ix, iy = min(int(cx), g - 1), min(int(cy), g - 1)
      sigma = max(0.7, np.sqrt(bw * bh) / STRIDE / 6)
      peak = np.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma**2))
      heat[i] = np.maximum(heat[i], peak)
      index[i, j] = iy * g + ix
      valid[i, j] = 1.0
      size[i, j] = np.log([bw / STRIDE, bh / STRIDE])
      offset[i, j] = (cx - ix, cy - iy)
  return {"heatmap": heat, "index": index, "valid": valid, "size": size, "offset": offset}
