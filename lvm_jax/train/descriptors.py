"""Photometric descriptors of centred galaxy stamps: the target of pretraining's descriptor term.

A U-Net reconstructs its input through the skip connections without needing its bottleneck, so
reconstruction alone leaves the exported embedding (the pooled bottleneck) close to a random
encoder's (README, "Pretraining"). The descriptor term asks a small head on that embedding to
predict, from the (masked) input, a few rotation-invariant numbers computed from the clean
image itself, no labels:

* colours: the difference between adjacent bands of the radial-profile sum (for g, r, z:
  g - r and r - z), (B, C - 1);
* the shape of the light profile: the band-summed mean in each annulus 1..n-1 divided by the
  central annulus's (its magnitude + `eps`), (B, n - 1).

The profile is the mean pixel value in annuli of `width_px` about the stamp centre ((S - 1) / 2),
the last annulus holding everything beyond (n - 1) x `width_px`. Pixels are in the network's input
units (e.g. asinh-normalised flux); the descriptors are standardised over the batch before the loss,
so their units never matter. With gradient accumulation each microbatch is standardised on its
own (as BatchNorm statistics would be), so accumulated steps then differ slightly from one batch. On the simulated survey the 11 numbers alone reach a k-NN accuracy of
0.49 on the classes, against 0.32 for 256 principal components of the pixels.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

STANDARD_CLIP = 3.0  # standardised targets are clipped to +-3: bright outliers don't dominate


def annulus_weights(size: int, annuli: int, width_px: float) -> np.ndarray:
  """(size, size, annuli) float32: each pixel's 1 / (pixels in its annulus) in its annulus."""
  yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
  ring = np.minimum((np.hypot(yy, xx) / width_px).astype(int), annuli - 1)
  onehot = ring[..., None] == np.arange(annuli)
  return (onehot / np.maximum(onehot.sum((0, 1)), 1)).astype(np.float32)


def count(bands: int, annuli: int) -> int:
  """Number of descriptors for `bands` bands and `annuli` annuli."""
  return (bands - 1) + (annuli - 1)


def photometric_descriptors(images: jnp.ndarray, annuli: int = 10, width_px: float = 2.0,
                            eps: float = 0.05) -> jnp.ndarray:
  """(B, S, S, C) centred stamps -> (B, C - 1 + annuli - 1) float32 (module docstring)."""
  if images.ndim != 4 or images.shape[1] != images.shape[2]:
    raise ValueError(f"expected square stamps (B, S, S, C), got {images.shape}")
  if images.shape[-1] < 2 or annuli < 2:
    raise ValueError("descriptors need at least 2 bands and 2 annuli")
  w = jnp.asarray(annulus_weights(images.shape[1], annuli, width_px))
  profile = jnp.einsum("bhwc,hwn->bnc", images.astype(jnp.float32), w)  # (B, annuli, C)
  total = profile.sum(axis=1)  # (B, C)
  colours = total[:, :-1] - total[:, 1:]
  summed = profile.sum(axis=2)  # (B, annuli)
  shape = summed[:, 1:] / (jnp.abs(summed[:, :1]) + eps)
  return jnp.concatenate([colours, shape], axis=1)


def standardise(targets: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
  """(B, D) targets standardised over the rows with weight 1 (mean 0, std 1), clipped at ±3.

  Statistics are weighted by `weights` (B,) (padding rows 0), so padding never shifts them.
  """
  w = weights.astype(jnp.float32)[:, None]
  n = jnp.maximum(w.sum(), 1.0)
  mean = (targets * w).sum(0) / n
  var = (jnp.square(targets - mean) * w).sum(0) / n
  z = (targets - mean) / jnp.sqrt(var + 1e-6)
  return jnp.clip(z, -STANDARD_CLIP, STANDARD_CLIP)
