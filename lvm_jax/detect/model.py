"""The lens detector: an anchor-free CenterNet-style head with a mask branch on multiscale features.

Design (chosen over Mask R-CNN): lens systems are small (5-40 px), round-ish, rarely overlap and
come in one class, so a dense head on the stride-4 map finds them without anchors, RoIAlign or a
proposal stage, all of which need dynamic shapes or ragged gathers that are awkward and slow
under `jax.jit`. Everything here has static shapes: one compiled program per tile size.

- Neck: each backbone feature map (strides 4, 8, 16, 32) -> 1x1 conv to `channels`, bilinear
  upsampling to stride 4, sum, 3x3 conv + ReLU (a one-level FPN).
- Heads on the stride-4 map (each 3x3 conv + ReLU + 1x1 conv): `heatmap` (1 logit per cell: a
  lens centre), `size` (log of box width and height in cells), `offset` (sub-cell position of
  the centre, in cells, in [0, 1)), `mask` (1 logit per cell: lens-system foreground).
- Instances: peaks of the sigmoid heatmap (3x3 max-pool NMS, static `lax.top_k`) give centre,
  score and box; an instance's mask is the foreground map (bilinearly upsampled to the input
  resolution, > 0.5) inside its box (box-cropped foreground, as in CenterMask-style designs:
  exact when lenses do not overlap, which holds in the data).

Backbones (`make_backbone`): the LVM's SUNet encoder (`method="encode"`, features s4, s8, s16 and
the normed bottleneck at s32) frozen or fine-tuned, and ResNet50 (`lvm_jax.models.resnet`,
c2..c5, BatchNorm) from scratch. The head is the same for all. Parameters are
{"backbone": ..., "head": ...}; `state` holds the ResNet's `batch_stats` (empty for SUNet).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

STRIDE = 4
HEAT_PRIOR = 0.01  # initial heatmap probability (focal-loss prior, Lin et al. 2017)
BACKBONES = ("lvm_frozen", "lvm_finetune", "resnet50", "resnet18")


class DetectionHead(nn.Module):
  """Multiscale features [f4, f8, f16, f32] (NHWC) -> dense predictions at stride 4.

  Returns heatmap (B, h, w) logits, size (B, h, w, 2) log(w, h / STRIDE), offset (B, h, w, 2)
  cells, mask (B, h, w) logits, where (h, w) is the stride-4 grid of the input.
  """
  channels: int = 64

  @nn.compact
  def __call__(self, features) -> dict[str, jnp.ndarray]:
    b, h, w, _ = features[0].shape
    x = 0.0
    for i, f in enumerate(features):
      p = nn.Conv(self.channels, (1, 1), name=f"lateral_{i}")(f.astype(jnp.float32))
      if p.shape[1:3] != (h, w):
        p = jax.image.resize(p, (b, h, w, self.channels), "bilinear")
      x = x + p
    x = nn.relu(nn.Conv(self.channels, (3, 3), name="fuse")(x))

    def branch(name, out, bias_init=nn.initializers.zeros):
      y = nn.relu(nn.Conv(self.channels, (3, 3), name=f"{name}_conv")(x))
      return nn.Conv(out, (1, 1), bias_init=bias_init, name=f"{name}_out")(y)

    prior = float(-np.log((1 - HEAT_PRIOR) / HEAT_PRIOR))
    return {"heatmap": branch("heatmap", 1, nn.initializers.constant(prior))[..., 0],
            "size": branch("size", 2), "offset": branch("offset", 2),
            "mask": branch("mask", 1)[..., 0]}


@dataclasses.dataclass(frozen=True)
class Backbone:
  """A feature extractor: `kind` "sunet" (LVM encoder) or "resnet"; `frozen` stops its gradient."""
  kind: str
  module: nn.Module
  frozen: bool = False

  def features(self, params, state, images, train: bool):
    """images (B, H, W, 3) -> ([f4, f8, f16, f32], new state)."""
    if self.kind == "sunet":
      out = self.module.apply({"params": params}, images, train=train and not self.frozen,
                              method="encode")
      feats = out["features"]
      feats = [*feats[:3], feats[-1]]  # s4, s8, s16 skips and the normed bottleneck (s32)
      new_state = state
    else:
      variables = {"params": params, **state}
      if train and not self.frozen:
        out, new_state = self.module.apply(variables, images, train=True, mutable=["batch_stats"])
      else:
        out, new_state = self.module.apply(variables, images, train=False), state
      feats = out["features"]
    if self.frozen:
      feats = [jax.lax.stop_gradient(f) for f in feats]
    return feats, new_state


def make_backbone(name: str, model_config=None, resnet_width: int = 64) -> Backbone:
  """`lvm_frozen`, `lvm_finetune` (SUNet from `model_config`, a `models.preset`), `resnet50`
  (the comparison) or `resnet18` (the same code path, cheaper: tests)."""
  from lvm_jax import models
  if name in ("lvm_frozen", "lvm_finetune"):
    if model_config is None:
      raise ValueError(f"backbone {name!r} needs the SUNet model config")
    return Backbone("sunet", models.build(model_config), frozen=name == "lvm_frozen")
  if name in ("resnet50", "resnet18"):
    from lvm_jax.models import resnet
    return Backbone("resnet", getattr(resnet, name)(width=resnet_width))
  raise ValueError(f"unknown backbone {name!r}; known: {BACKBONES}")


@dataclasses.dataclass(frozen=True)
class LensDetector:
  """Backbone + `DetectionHead`, used functionally: `init`, `apply`, `predict`."""
  backbone: Backbone
  head: DetectionHead
  img_size: int

  def init(self, seed: int, backbone_params=None) -> tuple[dict, dict]:
    """(params {"backbone", "head"}, state). `backbone_params`: pretrained SUNet parameters
    (extra entries, e.g. the decoder's, are dropped)."""
    from lvm_jax import models
    images = jnp.zeros((1, self.img_size, self.img_size, 3), jnp.float32)
    key = jax.random.key(seed)
    if self.backbone.kind == "sunet":
      bparams = models.init_params(self.backbone.module, seed)
      encoder = jax.eval_shape(lambda p: self.backbone.module.init(
          key, images, method="encode")["params"], bparams)
      if backbone_params is not None:
        bparams = backbone_params
      bparams = {k: bparams[k] for k in encoder}
      state = {}
    else:
      variables = jax.jit(lambda k: self.backbone.module.init(k, images, train=False))(key)
      bparams = variables["params"]
      state = {k: v for k, v in variables.items() if k != "params"}
    shapes, _ = jax.eval_shape(lambda p, s: self.backbone.features(p, s, images, train=False),
                               bparams, state)
    hparams = jax.jit(lambda k: self.head.init(k, [jnp.zeros(s.shape) for s in shapes])["params"])(
        jax.random.fold_in(key, 1))
    return {"backbone": bparams, "head": hparams}, state

  def apply(self, params, state, images, train: bool = False):
    """images (B, img_size, img_size, 3) network input -> (head outputs, new state)."""
    feats, new_state = self.backbone.features(params["backbone"], state, images, train)
    return self.head.apply({"params": params["head"]}, feats), new_state


def decode(outputs: dict[str, jnp.ndarray], top_k: int) -> dict[str, jnp.ndarray]:
  """Dense head outputs -> static top-k instances per image, in input pixels.

  Returns scores (B, k), boxes (B, k, 4) (x0, y0, x1, y1) input pixels (edges), and
  mask_prob (B, H, W) the foreground probability at input resolution (H = STRIDE h).
  """
  heat = jax.nn.sigmoid(outputs["heatmap"])
  b, h, w = heat.shape
  pooled = jax.lax.reduce_window(heat, -jnp.inf, jax.lax.max, (1, 3, 3), (1, 1, 1), "SAME")
  peaks = jnp.where(heat >= pooled, heat, 0.0).reshape(b, h * w)
  scores, idx = jax.lax.top_k(peaks, top_k)
  iy, ix = idx // w, idx % w
  gather = jax.vmap(lambda a, i: a.reshape(h * w, -1)[i])
  offset = gather(outputs["offset"], idx)
  size = jnp.exp(jnp.clip(gather(outputs["size"], idx), -5.0, 6.0)) * STRIDE
  cx = (ix + offset[..., 0]) * STRIDE
  cy = (iy + offset[..., 1]) * STRIDE
  boxes = jnp.stack([cx - size[..., 0] / 2, cy - size[..., 1] / 2,
                     cx + size[..., 0] / 2, cy + size[..., 1] / 2], axis=-1)
  boxes = jnp.clip(boxes, 0.0, float(STRIDE * max(h, w)))
  mask = jax.image.resize(outputs["mask"], (b, h * STRIDE, w * STRIDE), "bilinear")
  return {"scores": scores, "boxes": boxes, "mask_prob": jax.nn.sigmoid(mask)}


def instance_masks(mask_prob: np.ndarray, boxes: np.ndarray, threshold: float = 0.5) -> np.ndarray:
  """Box-cropped foreground: (H, W) probabilities, (K, 4) boxes -> (K, H, W) bool."""
  h, w = mask_prob.shape
  fg = mask_prob > threshold
  out = np.zeros((len(boxes), h, w), bool)
  for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes)):
    xa, ya = int(np.clip(np.floor(x0), 0, w)), int(np.clip(np.floor(y0), 0, h))
    xb, yb = int(np.clip(np.ceil(x1), 0, w)), int(np.clip(np.ceil(y1), 0, h))
    out[k, ya:yb, xa:xb] = fg[ya:yb, xa:xb]
  return out


def build_detector(name: str, model_config, channels: int = 64, resnet_width: int = 64) -> LensDetector:
  """A `LensDetector` for backbone `name` at the SUNet config's img_size (ResNet: the same size)."""
  backbone = make_backbone(name, model_config, resnet_width)
  return LensDetector(backbone, DetectionHead(channels), int(model_config.img_size))


def count(tree: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
