"""Training and evaluation of the lens detector: loss, a jitted step, a small loop, field evaluation.

Loss (per batch of tiles): CenterNet's penalty-reduced focal loss on the heatmap (alpha 2,
beta 4, normalised by the number of lenses), L1 on log box size and on the centre offset at each
lens's cell, and binary cross-entropy plus soft Dice on the foreground mask (logits upsampled to
the tile's resolution). Weights come from `config.loss`.

Batches draw `positive_fraction` of their tiles from tiles that hold a lens (lenses are rare in
tiles), each with a random dihedral transform; all randomness is seeded by (seed, step). A
frozen backbone gets no updates (`lvm_jax.train.optimizer.make_optimizer` with
`frozen=("backbone",)`) and no gradient (`stop_gradient`).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lvm_jax.detect import model as model_lib
from lvm_jax.detect import targets as targets_lib


def _gather(x, index):
  """x (B, h, w, C) or (B, h, w), index (B, M) flat cells -> (B, M, C) or (B, M)."""
  b, h, w = x.shape[:3]
  flat = x.reshape(b, h * w, -1)
  out = jnp.take_along_axis(flat, index[..., None], axis=1)
  return out if x.ndim == 4 else out[..., 0]


def detection_loss(outputs: dict, batch: dict, weights) -> tuple[jnp.ndarray, dict]:
  """Scalar loss and its parts for head outputs and a batch of dense targets (see module)."""
  logits = outputs["heatmap"]
  target = batch["heatmap"]
  p = jax.nn.sigmoid(logits)
  log_p, log_1mp = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
  pos = (target >= 1.0 - 1e-4).astype(jnp.float32)
  n_pos = jnp.maximum(pos.sum(), 1.0)
  focal = -(pos * (1 - p) ** 2 * log_p + (1 - pos) * (1 - target) ** 4 * p**2 * log_1mp).sum() / n_pos
  valid = batch["valid"]
  n_valid = jnp.maximum(valid.sum(), 1.0)
  def slot_l1(name):
    err = jnp.abs(_gather(outputs[name], batch["index"]) - batch[name]).sum(-1)
    return (err * valid).sum() / n_valid
  size, offset = slot_l1("size"), slot_l1("offset")
  b, t = batch["foreground"].shape[:2]
  mask_logits = jax.image.resize(outputs["mask"], (b, t, t), "bilinear")
  fg = batch["foreground"].astype(jnp.float32)
  bce = optax.sigmoid_binary_cross_entropy(mask_logits, fg).mean()
  mp = jax.nn.sigmoid(mask_logits)
  dice = 1.0 - (2 * (mp * fg).sum() + 1.0) / (mp.sum() + fg.sum() + 1.0)
  parts = {"heatmap": focal, "size": size, "offset": offset, "mask_bce": bce, "mask_dice": dice}
  total = (weights.heatmap * focal + weights.size * size + weights.offset * offset
           + weights.mask * (bce + dice))
  return total, parts


def make_optimizer(config, frozen: bool):
  """(optimizer over {"backbone", "head"}, schedule); a frozen backbone's updates are zero."""
  from lvm_jax.train.optimizer import make_optimizer as base
  return base(config.optimizer, int(config.num_steps), frozen=("backbone",) if frozen else ())


def make_train_step(detector, optimizer, weights):
  """A jitted (params, state, opt_state, batch) -> (params, state, opt_state, metrics) step."""

  def loss_fn(params, state, batch):
    outputs, new_state = detector.apply(params, state, batch["image"], train=True)
    loss, parts = detection_loss(outputs, batch, weights)
    return loss, (parts, new_state)

  @jax.jit
  def step(params, state, opt_state, batch):
    (loss, (parts, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, new_state, opt_state, {"loss": loss, **parts}

  return step


class TileSet:
  """Training tiles of many fields: images (N, T, T, 3), foreground, boxes, n_boxes."""

  def __init__(self, fields, prep, tile: int, overlap: int):
    parts = [targets_lib.field_tiles(f, prep, tile, overlap) for f in fields]
    self.data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    self.tile = tile
    self.positive = np.nonzero(self.data["n_boxes"] > 0)[0]
    self.negative = np.nonzero(self.data["n_boxes"] == 0)[0]

  def __len__(self) -> int:
    return len(self.data["image"])

  def batch(self, seed: int, step: int, size: int, positive_fraction: float = 0.5) -> dict:
    """Batch `step` of run `seed` (deterministic), with dense targets."""
    rng = np.random.default_rng([seed, step])
    n_pos = int(round(size * positive_fraction)) if len(self.positive) else 0
    n_pos = size if not len(self.negative) else n_pos
    idx = np.concatenate([rng.choice(self.positive, n_pos), rng.choice(self.negative, size - n_pos)]
                         if len(self.negative) else [rng.choice(self.positive, n_pos)])
    images, fgs, boxes = [], [], []
    for i in idx:
      im, fg, b = targets_lib.augment(self.data["image"][i], self.data["foreground"][i],
                                      self.data["boxes"][i], int(rng.integers(4)),
                                      bool(rng.integers(2)))
      images.append(im)
      fgs.append(fg)
      boxes.append(b)
    n_boxes = self.data["n_boxes"][idx]
    dense = targets_lib.dense_targets(np.stack(boxes), n_boxes, self.tile)
    return {"image": np.stack(images), "foreground": np.stack(fgs), **dense}


def train(detector, params, state, tiles: TileSet, config, seed: int, log=print) -> dict[str, Any]:
  """Runs `config.num_steps` steps of `config.batch_size` tiles; returns params, state, history."""
  opt, schedule = make_optimizer(config, detector.backbone.frozen)
  # committed to one device, as the step's outputs are (else the second step compiles again)
  params, state, opt_state = jax.device_put((params, state, opt.init(params)), jax.devices()[0])
  step_fn = make_train_step(detector, opt, config.loss)
  history = []
  start = time.time()
  for step in range(int(config.num_steps)):
    batch = tiles.batch(seed, step, int(config.batch_size), float(config.positive_fraction))
    params, state, opt_state, metrics = step_fn(params, state, opt_state, batch)
    if step % int(config.log_every) == 0 or step == int(config.num_steps) - 1:
      row = {k: float(v) for k, v in metrics.items()}
      row.update(step=step, seconds=time.time() - start, lr=float(schedule(step)))
      history.append(row)
      log(f"step {step} loss {row['loss']:.4f} ({row['seconds']:.0f} s)")
  return {"params": params, "state": state, "history": history, "seconds": time.time() - start}


def evaluate_fields(tiled, fields) -> tuple[list[dict], list[dict]]:
  """Runs a `tiling.TiledDetector` over fields: (detections, truths) per field for `metrics`."""
  dets, truths = [], []
  for f in fields:
    d = tiled(f.image)
    dets.append({"boxes": d["boxes"], "scores": d["scores"], "masks": d["masks"]})
    truths.append({"boxes": f.boxes, "masks": f.masks})
  return dets, truths
