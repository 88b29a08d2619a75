"""Tasks (scenic style): the network maps images to features; a task owns the loss and metrics.

A task has:
  init_variables(model, seed, shardings) -> {"params": ..., other collections (batch_stats) ...}
  loss_fn(model, variables, batch, rng, train) -> (loss, (metrics, new_mutable_collections))
  mutable: the collection names the forward pass updates in training (e.g. ("batch_stats",)).
  batch_keys: the batch fields the step needs on device.
Metrics are dicts of *sums* with a `count` entry, so they add over microbatches and devices.
Downstream tasks (classification, regression heads) implement the same interface.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from lvm_jax.train import descriptors


def masked_mean_per_image(x: jnp.ndarray) -> jnp.ndarray:
  """(B, ...) -> (B,) mean over all but the leading axis, in float32."""
  return jnp.mean(x.astype(jnp.float32).reshape(x.shape[0], -1), axis=1)


def random_patch_mask(rng, batch: int, size: int, patch: int, fraction: float) -> jnp.ndarray:
  """(B, size, size) bool, True on round(fraction * cells) random (patch x patch) cells per image.

  Exactly k cells per image (like `lvm_jax.data.degrade.mask_patches`), drawn on device.
  """
  g = -(-size // patch)
  cells = g * g
  k = int(round(fraction * cells))
  scores = jax.random.uniform(rng, (batch, cells))
  rank = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
  grid = (rank < k).reshape(batch, g, g)
  mask = jnp.repeat(jnp.repeat(grid, patch, axis=1), patch, axis=2)
  return mask[:, :size, :size]


@dataclasses.dataclass(frozen=True)
class ReconstructionTask:
  """Self-supervised reconstruction of the (normalised) image: MSE weighted by `valid`.

  The input may be degraded on device so that the bottleneck must carry information (a U-Net
  reconstructs a clean input through its skips alone): `mask_fraction` of the
  (`mask_patch`, `mask_patch`) cells are set to `mask_fill`, and Gaussian noise of
  `noise_sigma` (normalised units) is added. The target is always the clean image; with
  `loss_on_masked_only` only masked pixels count (MAE style). With `skip_drop` > 0 that
  fraction of the images (drawn per image and step) is reconstructed from the bottleneck alone,
  every skip connection zeroed, so the bottleneck (the exported embedding) must describe the
  galaxy; the other images train the full U-Net as usual.

  With `descriptor_weight` > 0 the loss adds that weight times the MSE between the model's
  `descriptors` output (a head on the embedding; the model needs `descriptor_outputs` =
  `descriptors.count(bands, descriptor_annuli, descriptor_orders, rings)`) and the clean image's
  photometric descriptors (colours, light-profile shape and, for `descriptor_orders`, azimuthal
  amplitudes in the rings between `descriptor_ring_edges_px`; `lvm_jax.train.descriptors`),
  standardised over the batch: the pooled bottleneck must then describe the galaxy, which
  reconstruction through the skips does not ask of it. `descriptor_input` says which input
  the head sees: "degraded" (the reconstruction pass's own embedding, no extra cost) or
  "clean" (a second, encoder-only pass on the clean images, `SUNet.describe`: the embedding
  is then trained on the images it is exported for).
  """
  mask_fraction: float = 0.0
  mask_patch: int = 8
  mask_fill: float = 0.0
  noise_sigma: float = 0.0
  loss_on_masked_only: bool = False
  skip_drop: float = 0.0
  descriptor_weight: float = 0.0
  descriptor_annuli: int = 10
  descriptor_width_px: float = 2.0
  descriptor_input: str = "degraded"
  descriptor_orders: tuple[int, ...] = ()
  descriptor_ring_edges_px: tuple[float, ...] = descriptors.RING_EDGES_PX
  mutable: tuple[str, ...] = ()
  batch_keys: tuple[str, ...] = ("image", "valid")

  def init_variables(self, model, seed: int, shardings=None) -> dict[str, Any]:
    from lvm_jax.models import initialisation
    params = initialisation.init_params(model, seed, shardings=shardings)
    return {"params": params}

  def degrade(self, images: jnp.ndarray, rng) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(degraded input (B, H, W, C), pixel mask (B, H, W) bool, True where masked)."""
    b, h, w, _ = images.shape
    mask = jnp.zeros((b, h, w), bool)
    x = images
    rng_mask, rng_noise = jax.random.split(rng)
    if self.mask_fraction > 0:
      mask = random_patch_mask(rng_mask, b, h, self.mask_patch, self.mask_fraction)
      x = jnp.where(mask[..., None], jnp.asarray(self.mask_fill, x.dtype), x)
    if self.noise_sigma > 0:
      x = x + self.noise_sigma * jax.random.normal(rng_noise, x.shape, x.dtype)
    return x, mask

  def per_image_loss(self, reconstruction, target, mask) -> jnp.ndarray:
    err = jnp.square(reconstruction.astype(jnp.float32) - target.astype(jnp.float32))
    if self.loss_on_masked_only and self.mask_fraction > 0:
      w = mask[..., None].astype(jnp.float32)
      return (jnp.sum((err * w).reshape(err.shape[0], -1), axis=1)
              / jnp.maximum(jnp.sum(w.reshape(w.shape[0], -1), axis=1) * err.shape[-1], 1.0))
    return masked_mean_per_image(err)

  def loss_fn(self, model, variables, batch, rng, train: bool = True):
    images = batch["image"]
    valid = batch["valid"].astype(jnp.float32)
    if self.descriptor_weight > 0:
      self.check_descriptor_head(model, images.shape[-1])
    if self.descriptor_input not in ("degraded", "clean"):
      raise ValueError(f"task.descriptor_input must be 'degraded' or 'clean', "
                       f"got {self.descriptor_input!r}")
    rng_degrade, rng_dropout, rng_skip = jax.random.split(rng, 3)
    x, mask = self.degrade(images, rng_degrade) if train else (
        images, jnp.zeros(images.shape[:3], bool))
    kwargs = {}
    if train and self.skip_drop > 0:
      kwargs["skip_keep"] = jax.random.bernoulli(
          rng_skip, 1.0 - self.skip_drop, (images.shape[0],)).astype(jnp.float32)
    if self.mutable and train:
      out, new_state = model.apply(variables, x, train=train, rngs={"dropout": rng_dropout},
                                   mutable=list(self.mutable), **kwargs)
    else:
      out = model.apply(variables, x, train=train, rngs={"dropout": rng_dropout}, **kwargs)
      new_state = {}
    per_image = self.per_image_loss(out["reconstruction"], images, mask)
    count = jnp.sum(valid)
    loss_sum = jnp.sum(per_image * valid)
    metrics = {"count": count}
    if self.descriptor_weight > 0:
      predicted = out["descriptors"]
      if self.descriptor_input == "clean":
        predicted = model.apply(variables, images, train=train, rngs={"dropout": rng_dropout},
                                method="describe")
      descriptor_sum = jnp.sum(self.descriptor_loss(predicted, images, valid) * valid)
      metrics["descriptor_loss"] = descriptor_sum
      metrics["reconstruction_loss"] = loss_sum
      loss_sum = loss_sum + self.descriptor_weight * descriptor_sum
    metrics["loss"] = loss_sum
    return loss_sum / jnp.maximum(count, 1.0), (metrics, new_state)

  def check_descriptor_head(self, model, bands: int) -> None:
    """Raises unless the model's descriptor head has one output per descriptor."""
    rings = len(self.descriptor_ring_edges_px) - 1
    expected = descriptors.count(bands, self.descriptor_annuli, self.descriptor_orders, rings)
    got = getattr(model, "descriptor_outputs", 0)
    if got != expected:
      raise ValueError(f"task.descriptor_weight > 0 needs model.descriptor_outputs = {expected} "
                       f"({bands} bands, {self.descriptor_annuli} annuli, azimuthal orders "
                       f"{list(self.descriptor_orders)} in {rings} rings); got {got}")

  def descriptor_loss(self, predicted, images, valid) -> jnp.ndarray:
    """(B,) squared error of `predicted` (B, n) vs the clean images' standardised descriptors."""
    target = descriptors.standardise(descriptors.photometric_descriptors(
        images, self.descriptor_annuli, self.descriptor_width_px,
        orders=self.descriptor_orders, ring_edges_px=self.descriptor_ring_edges_px), valid)
    return jnp.mean(jnp.square(predicted - jax.lax.stop_gradient(target)), axis=1)


def make_task(task_config):
  """The task named by `config.task.name`."""
  if task_config.name == "reconstruction":
    return ReconstructionTask(
        mask_fraction=float(task_config.mask_fraction), mask_patch=int(task_config.mask_patch),
        mask_fill=float(task_config.mask_fill), noise_sigma=float(task_config.noise_sigma),
        loss_on_masked_only=bool(task_config.loss_on_masked_only),
        skip_drop=float(task_config.get("skip_drop", 0.0)),
        descriptor_weight=float(task_config.get("descriptor_weight", 0.0)),
        descriptor_annuli=int(task_config.get("descriptor_annuli", 10)),
        descriptor_width_px=float(task_config.get("descriptor_width_px", 2.0)),
        descriptor_input=str(task_config.get("descriptor_input", "degraded")),
        descriptor_orders=tuple(int(m) for m in task_config.get("descriptor_orders", ())),
        descriptor_ring_edges_px=tuple(float(r) for r in task_config.get(
            "descriptor_ring_edges_px", descriptors.RING_EDGES_PX)))
  raise ValueError(f"unknown task {task_config.name!r}")
