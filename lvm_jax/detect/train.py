"""Training and evaluation of the lens detector: the loss as a task, the loop, field evaluation.

Loss (per batch of tiles): CenterNet's penalty-reduced focal loss on the heatmap (alpha 2,
beta 4, normalised by the number of lenses), L1 on log box size and on the centre offset at each
lens's cell, and binary cross-entropy plus soft Dice on the foreground mask (logits upsampled to
the tile's resolution). Weights come from `config.loss`.

Batches draw `positive_fraction` of their tiles from tiles that hold a lens (lenses are rare in
tiles), each with a random dihedral transform; all randomness is seeded by (seed, step).
Training runs on the shared optimizer (`lvm_jax.train.optimizer`) and train step
(`lvm_jax.train.step`) through `DetectionTask`; a frozen backbone gets no updates
(`frozen=("backbone",)`) and no gradient (`stop_gradient`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lvm_jax.detect import targets as targets_lib
from lvm_jax.train import optimizer as optimizer_lib
from lvm_jax.train import step as step_lib


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


@dataclasses.dataclass(frozen=True)
class DetectionTask:
  """The detector's training objective in the interface of `lvm_jax.train.step.make_train_step`.

  `loss_fn(detector, variables, batch, rng, train)` -> (loss, (metrics, new model state)):
  `variables` {"params": {"backbone", "head"}, **backbone state (a ResNet's batch_stats)};
  the loss is the batch's `detection_loss` (a mean over the batch, so `count` is 1 and the
  step's reported loss and parts are that mean); the parts pass through as metrics.
  """
  weights: Any  # config.loss: heatmap, size, offset, mask
  batch_keys: tuple[str, ...] = ("image", "foreground", "heatmap", "index", "size", "offset",
                                 "valid")

  def loss_fn(self, detector, variables, batch, rng, train: bool = True):
    del rng  # the loss draws nothing at random
    state = {k: v for k, v in variables.items() if k != "params"}
    outputs, new_state = detector.apply(variables["params"], state, batch["image"], train=train)
    loss, parts = detection_loss(outputs, batch, self.weights)
    return loss, ({"loss": loss, "count": jnp.ones((), jnp.float32), **parts}, new_state)


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
  """Runs `config.num_steps` steps of `config.batch_size` tiles with the shared optimizer
  (`config.optimizer`; a frozen backbone gets no updates) and train step; returns params,
  state, history (rows every `config.log_every` steps and at the last) and seconds."""
  num_steps = int(config.num_steps)
  tx, schedule = optimizer_lib.make_optimizer(
      config.optimizer, num_steps, frozen=("backbone",) if detector.backbone.frozen else ())
  step_fn = jax.jit(step_lib.make_train_step(detector, DetectionTask(config.loss), tx, schedule,
                                             seed=seed), donate_argnums=(0,))
  # copies (the step donates its state, the caller keeps `params`), committed to one device as
  # the step's outputs are (else the second step compiles again)
  params, state = jax.tree.map(jnp.array, (params, state))
  train_state = jax.device_put({"step": jnp.zeros((), jnp.int32), "params": params,
                                "opt_state": jax.jit(tx.init)(params), "model_state": state},
                               jax.devices()[0])
  history = []
  start = time.time()
  for step in range(num_steps):
    batch = tiles.batch(seed, step, int(config.batch_size), float(config.positive_fraction))
    train_state, metrics = step_fn(train_state, batch)
    if step % int(config.log_every) == 0 or step == num_steps - 1:
      row = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "count"}
      row.update(step=step, seconds=time.time() - start)
      history.append(row)
      log(f"step {step} loss {row['loss']:.4f} ({row['seconds']:.0f} s)")
  return {"params": train_state["params"], "state": train_state["model_state"],
          "history": history, "seconds": time.time() - start}


def evaluate_fields(tiled, fields) -> tuple[list[dict], list[dict]]:
  """Runs a `tiling.TiledDetector` over fields: (detections, truths) per field for `metrics`."""
  dets, truths = [], []
  for f in fields:
    d = tiled(f.image)
    dets.append({"boxes": d["boxes"], "scores": d["scores"], "masks": d["masks"]})
    truths.append({"boxes": f.boxes, "masks": f.masks})
  return dets, truths
