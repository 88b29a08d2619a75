"""The downstream tasks (scenic style): each owns its head, its loss and its metrics.

Each task implements `lvm_jax.train.objectives`'s interface (init_variables / loss_fn / mutable /
batch_keys) on a `lvm_jax.downstream.network.Network` whose head `name` is `task.head()`:

* `ClassificationTask`: `ClassifierHead` (two dense layers on the pooled features),
  cross-entropy. Batch: image (B, H, W, 3), label (B,) int, valid (B,).
* `RestorationTask`: an image head from the degraded image's features to the clean image, MSE
  (+ an aperture-flux term, `flux_weight`).
  Batch: degraded (or, PSF-aware, deconvolved: `input_key`), image (the clean target), valid.
  Degradations (paper / physical modes of `lvm_jax.data.degrade`) are drawn when the data set
  is built (`lvm_jax.downstream.datasets`). `pixel_loss` "log_mse" takes the log of each image's MSE
  (the mean PSNR up to a constant), so heavily and lightly degraded galaxies weigh alike.
* `InpaintingTask`: an image head filling masked patches: each step draws one patch size
  (4, 8 or 16 px) and one masked fraction from `fractions` (up to 0.7), masks with
  `lvm_jax.train.objectives.random_patch_mask` (masked pixels set to 0, or with `fill_sigmas_px`
  filled by normalised convolution of the visible ones, `fill_masked`; with `mask_channel` the
  head also gets the mask as a 4th channel), loss = MSE over the masked pixels + `whole_weight`
  x MSE over the image (per image; its log with `pixel_loss` "log_mse"). Batch: image, valid.
* `ParameterTask`: `GaussianHead` predicting the standardised `lvm_jax.downstream.labels.PARAMETERS`
  with a per-output sigma, Gaussian negative log-likelihood. Batch: image, params (B, 6), valid.

The image head of restoration and inpainting is `heads.ImageDecoder` (a convolutional decoder,
trained from scratch) or, with `lvm_decoder` (a SUNet module of the backbone's config),
`heads.LvmDecoderHead`: the pretrained LVM's own decoder, fine-tuned as the paper does (loaded
by `lvm_jax.downstream.network.load_lvm_pretrained`).

`mutable` is ("batch_stats",) when the network has BatchNorm statistics to update in training:
a ResNet backbone, and the `ClassifierHead` / `GaussianHead` standardisation of every network.
`per_image_loss(model, variables, batch, rng, train) -> ((B,) loss, new mutable state)` is what
`lvm_jax.downstream.multitask.MultiTask` combines.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lvm_jax.downstream import base
from lvm_jax.downstream import heads
from lvm_jax.downstream import metrics
from lvm_jax.train.objectives import random_patch_mask


@dataclasses.dataclass(frozen=True)
class _Task:
  name: str = ""
  image_size: int = 64
  mutable: tuple[str, ...] = ()

  def init_variables(self, model, seed: int, shardings=None) -> dict[str, Any]:
    del shardings
    return base.init_variables(model, self.image_size, seed)

  @property
  def log_loss(self) -> bool:
    """Whether the loss is a negative log-likelihood or a log error (it can be negative;
    Multi_active compares its held-out values by difference, `multitask.progress_ratios`)."""
    return getattr(self, "pixel_loss", "mse") == "log_mse"

  def loss_fn(self, model, variables, batch, rng, train: bool = True):
    per_image, new_state = self.per_image_loss(model, variables, batch, rng, train)
    loss, metrics = base.mean_loss(per_image, batch["valid"])
    return loss, (metrics, new_state)


@dataclasses.dataclass(frozen=True)
class ClassificationTask(_Task):
  name: str = "classification"
  num_classes: int = 8
  hidden: int = 256
  batch_keys: tuple[str, ...] = ("image", "label", "valid")
  log_loss = True  # cross-entropy

  def head(self):
    return heads.ClassifierHead(self.num_classes, self.hidden)

  def per_image_loss(self, model, variables, batch, rng, train):
    logits, state = base.run_head(model, variables, batch["image"], self.name, rng, train,
                                  self.mutable)
    labels = jnp.clip(batch["label"].astype(jnp.int32), 0, self.num_classes - 1)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels), state


def _linear(images: jnp.ndarray, asinh: bool) -> jnp.ndarray:
  """Network-space images -> linear flux (softening units per band with `asinh`), float32."""
  x = images.astype(jnp.float32)
  return jnp.sinh(x) if asinh else x


def _aperture_sum(linear: jnp.ndarray, radius_px: float) -> jnp.ndarray:
  inside = metrics.aperture_mask(*linear.shape[1:3], radius_px).astype(np.float32)
  return jnp.einsum("bhwc,hw->bc", linear, inside)


def aperture_flux(images: jnp.ndarray, radius_px: float, asinh: bool) -> jnp.ndarray:
  """(B, H, W, C) network-space images -> (B, C) flux in a centred circle of `radius_px`.

  With `asinh` the images are asinh(flux / softening) and the flux is in softening units per
  band (sinh of the pixels): ratios of two such fluxes equal ratios in nanomaggies.
  """
  return _aperture_sum(_linear(images, asinh), radius_px)


def _aperture_sky_noise(linear: jnp.ndarray, radius_px: float, border: int = 6) -> jnp.ndarray:
  """(B, C) the sky noise of an aperture's flux: pixel std in the outer `border` px x sqrt(area)."""
  ring = metrics.border_mask(*linear.shape[1:3], border)
  return jnp.std(linear[:, ring, :], axis=1) * np.sqrt(np.pi * radius_px**2)


def flux_term(pred: jnp.ndarray, target: jnp.ndarray, radius_px: float, asinh: bool
              ) -> jnp.ndarray:
  """(B,) mean over bands of (F_pred - F_true)^2 / (F_true^2 + N^2) (`RestorationTask`)."""
  true = _linear(target, asinh)
  f_pred = aperture_flux(pred, radius_px, asinh)
  f_true = _aperture_sum(true, radius_px)
  noise = jax.lax.stop_gradient(_aperture_sky_noise(true, radius_px))
  return jnp.mean(jnp.square(f_pred - f_true) / (jnp.square(f_true) + jnp.square(noise) + 1e-6),
                  axis=1)


def pixel_loss(kind: str, mse: jnp.ndarray) -> jnp.ndarray:
  """(B,) per-image MSE -> (B,) loss: "mse" as is, "log_mse" its log (the mean PSNR up to a
  constant and a sign)."""
  if kind == "log_mse":
    return jnp.log(mse + 1e-6)
  if kind != "mse":
    raise ValueError(f"unknown pixel_loss {kind!r}; known: mse, log_mse")
  return mse


def _image_head(decoder_width: int, lvm_decoder, residual: bool = False, in_chans: int = 3,
                full_res_convs: int = 1, input_skip: bool = False):
  if lvm_decoder is None:
    return heads.ImageDecoder(decoder_width, in_chans=in_chans, full_res_convs=full_res_convs,
                              input_skip=input_skip)
  return heads.LvmDecoderHead(lvm_decoder.clone(), residual, in_chans=in_chans)


@dataclasses.dataclass(frozen=True)
class RestorationTask(_Task):
  """MSE (or its log, `pixel_loss`) in network space + `flux_weight` x the aperture-flux term.

  The flux term is ((F_pred - F_clean)^2 / (F_clean^2 + N^2)) averaged over bands, F the flux in
  a centred aperture of `flux_radius_px` (linear units: `asinh` says the network space is an
  asinh stretch), N the clean image's sky noise in that aperture: a relative error for a bright
  galaxy, an error in noise units for a faint one. MSE on asinh pixels alone lets the bright
  centre drift low by a few tenths, which is tens of per cent of the flux.

  `input_key` is the batch key of the network's input: "degraded" (blind restoration) or
  "deconvolved" (the Richardson-Lucy restoration with the true PSF, which the network refines:
  PSF-aware restoration, `lvm_jax.downstream.datasets.deconvolved`).
  """
  name: str = "restoration"
  decoder_width: int = 32
  flux_weight: float = 0.0
  flux_radius_px: float = 8.0
  asinh: bool = True
  lvm_decoder: Any = dataclasses.field(default=None, compare=False)
  lvm_residual: bool = False
  input_key: str = "degraded"
  pixel_loss: str = "mse"

  @property
  def batch_keys(self) -> tuple[str, ...]:
    return (self.input_key, "image", "valid")

  def head(self):
    return _image_head(self.decoder_width, self.lvm_decoder, self.lvm_residual)

  def per_image_loss(self, model, variables, batch, rng, train):
    out, state = base.run_head(model, variables, batch[self.input_key], self.name, rng, train,
                               self.mutable)
    target = batch["image"].astype(jnp.float32)
    err = jnp.square(out - target)
    loss = pixel_loss(self.pixel_loss, jnp.mean(err.reshape(err.shape[0], -1), axis=1))
    if self.flux_weight > 0:
      loss = loss + self.flux_weight * flux_term(out, target, self.flux_radius_px, self.asinh)
    return loss, state


def _gaussian_blur(x: jnp.ndarray, sigma_px: float) -> jnp.ndarray:
  """(B, S, S, C) -> the same, each band convolved with a normalised 2-D Gaussian (zero
  padding), sigma in pixels."""
  half = max(1, int(np.ceil(3.0 * sigma_px)))
  g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_px) ** 2)
  kernel = np.outer(g, g) / np.sum(g) ** 2
  c = x.shape[-1]
  k = jnp.asarray(np.broadcast_to(kernel[:, :, None, None], (*kernel.shape, 1, c)), x.dtype)
  return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", feature_group_count=c,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def fill_masked(images: jnp.ndarray, mask: jnp.ndarray, sigmas_px: tuple[float, ...] = ()
                ) -> jnp.ndarray:
  """The inpainting input: images (B, S, S, C) with the pixels where mask (B, S, S) is True
  replaced.

  With no `sigmas_px` they are set to 0 (the masked input). Otherwise by normalised convolution
  (Knutsson & Westin 1993) of the visible pixels: sum(G * visible image) / sum(G * visible),
  with the first Gaussian of `sigmas_px` (pixels) that has visible weight above 1e-3 there
  (wider ones reach into large holes), 0 where none has. Visible pixels are kept.
  """
  images = images.astype(jnp.float32)
  fill = jnp.zeros_like(images)
  visible = (~mask)[..., None].astype(jnp.float32)
  done = jnp.zeros_like(visible, bool)
  for sigma in sigmas_px:
    weight = _gaussian_blur(visible, sigma)
    ok = (weight > 1e-3) & ~done
    value = _gaussian_blur(images * visible, sigma) / jnp.maximum(weight, 1e-3)
    fill = jnp.where(ok, value, fill)
    done = done | ok
  return jnp.where(mask[..., None], fill, images)


@dataclasses.dataclass(frozen=True)
class InpaintingTask(_Task):
  name: str = "inpainting"
  decoder_width: int = 32
  patch_sizes: tuple[int, ...] = (4, 8, 16)
  fractions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7)
  whole_weight: float = 0.1
  lvm_decoder: Any = dataclasses.field(default=None, compare=False)
  lvm_residual: bool = False
  # () : masked pixels set to 0; else the network's input is `fill_masked` with these sigmas
  fill_sigmas_px: tuple[float, ...] = ()
  # the mask (1 = hidden) as a 4th input channel, seen by the head (the backbone sees g, r, z)
  mask_channel: bool = False
  full_res_convs: int = 1  # the conv head's 3x3 convs at full resolution on [features, input]
  input_skip: bool = False  # the conv head also sees the input at stride 2
  pixel_loss: str = "mse"  # or "log_mse" (of each image's loss: the masked-pixel PSNR's mean)
  batch_keys: tuple[str, ...] = ("image", "valid")

  def head(self):
    return _image_head(self.decoder_width, self.lvm_decoder, self.lvm_residual,
                       in_chans=4 if self.mask_channel else 3,
                       full_res_convs=self.full_res_convs, input_skip=self.input_skip)

  def masked_input(self, images, mask) -> jnp.ndarray:
    """The network's input for clean `images` (B, S, S, C) and `mask` (B, S, S) True = hidden:
    (B, S, S, C) filled (`fill_masked`), + the mask as channel C+1 with `mask_channel`."""
    filled = fill_masked(images, mask, tuple(self.fill_sigmas_px))
    if not self.mask_channel:
      return filled
    return jnp.concatenate([filled, mask[..., None].astype(filled.dtype)], axis=-1)

  def draw_mask(self, rng, batch: int) -> jnp.ndarray:
    """(B, S, S) bool: one (patch size, fraction) pair drawn from the grid for the whole batch."""
    combos = [(p, f) for p in self.patch_sizes for f in self.fractions]
    rng_choice, rng_mask = jax.random.split(rng)
    masks = jnp.stack([random_patch_mask(rng_mask, batch, self.image_size, p, f)
                       for p, f in combos])
    return masks[jax.random.randint(rng_choice, (), 0, len(combos))]

  def per_image_loss(self, model, variables, batch, rng, train):
    images = batch["image"].astype(jnp.float32)
    rng_mask, rng_model = jax.random.split(rng)
    mask = batch["mask"] if "mask" in batch else self.draw_mask(rng_mask, images.shape[0])
    masked = self.masked_input(images, mask)
    out, state = base.run_head(model, variables, masked, self.name, rng_model, train,
                               self.mutable)
    err = jnp.square(out - images)
    w = jnp.broadcast_to(mask[..., None], err.shape).astype(jnp.float32)
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    masked_mse = jnp.sum(flat(err * w), 1) / jnp.maximum(jnp.sum(flat(w), 1), 1.0)
    return pixel_loss(self.pixel_loss, masked_mse + self.whole_weight * jnp.mean(flat(err), 1)
                      ), state


@dataclasses.dataclass(frozen=True)
class ParameterTask(_Task):
  name: str = "parameters"
  num_outputs: int = 6
  hidden: int = 256
  batch_keys: tuple[str, ...] = ("image", "params", "valid")
  log_loss = True  # Gaussian negative log-likelihood

  def head(self):
    return heads.GaussianHead(self.num_outputs, self.hidden)

  def per_image_loss(self, model, variables, batch, rng, train):
    out, state = base.run_head(model, variables, batch["image"], self.name, rng, train,
                               self.mutable)
    z = (batch["params"].astype(jnp.float32) - out["mean"]) * jnp.exp(-out["log_sigma"])
    nll = 0.5 * jnp.square(z) + out["log_sigma"]
    return jnp.sum(nll, axis=1), state


TASKS = {"classification": ClassificationTask, "restoration": RestorationTask,
         "inpainting": InpaintingTask, "parameters": ParameterTask}


def make_task(kind: str, **fields) -> _Task:
  """A task by kind ('classification', 'restoration', 'inpainting', 'parameters')."""
  try:
    cls = TASKS[kind]
  except KeyError:
    raise ValueError(f"unknown downstream task {kind!r}; known: {sorted(TASKS)}") from None
  return cls(**fields)


# Row labels of the results and the report, shared by the evaluation driver and the report.
PSF_AWARE_LABEL = "Fine_tuned on Richardson-Lucy"
CALIBRATED_LABEL = PSF_AWARE_LABEL + " + flux calibration"
FEW_SHOT_LVM_LABELS = {"frozen": "LVM + head", "fine_tuned": "LVM fine-tuned + head"}
