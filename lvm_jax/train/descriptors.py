"""Photometric descriptors of centred galaxy stamps: the target of pretraining's descriptor term.

A U-Net reconstructs its input through the skip connections without needing its bottleneck, so
reconstruction alone leaves the exported embedding (the pooled bottleneck) close to a random
encoder's (README, "Pretraining"). The descriptor term asks a small head on that embedding to
predict a few rotation-invariant numbers computed from the clean image itself (no labels) from
the embedding of the network's input (`ReconstructionTask.descriptor_input`):

* colours: the difference between adjacent bands of the radial-profile sum (for g, r, z:
  g - r and r - z), (B, C - 1);
* the shape of the light profile: the band-summed mean in each annulus 1..n-1 divided by the
  central annulus's (its magnitude + `eps`), (B, n - 1);
* optionally, azimuthal structure: for each Fourier order m in `orders` and each ring between
  consecutive `ring_edges_px`, the amplitude |<I e^{i m theta}>| / (<|I|> + `eps`) of the
  band-summed image I over the ring (m = 1 lopsidedness, m = 2 elongation and bars),
  (B, len(orders) x (len(ring_edges_px) - 1)). Amplitudes are unchanged by rotations and flips.

The profile is the mean pixel value in annuli of `width_px` about the stamp centre ((S - 1) / 2),
the last annulus holding everything beyond (n - 1) x `width_px`. Pixels are in the network's input
units (e.g. asinh-normalised flux); the descriptors are standardised over the batch before the loss,
so their units never matter. With gradient accumulation each microbatch is standardised on its
own (as BatchNorm statistics would be), so accumulated steps then differ slightly from one batch.

On 4,000 galaxies of an independently simulated survey (64 px, 10 annuli of 2 px), standardised,
the 11 colour and profile numbers alone reach a k-NN accuracy (k = 10) of 0.489 on the classes;
with m = 1, 2 in rings 2-6-12-20 px (17 numbers) 0.585; 256 principal components of the pixels
reach 0.379.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

STANDARD_CLIP = 3.0  # standardised targets are clipped to +-3: bright outliers don't dominate
RING_EDGES_PX = (2.0, 6.0, 12.0, 20.0)  # default rings of the azimuthal amplitudes (64 px stamps)


def _polar(size: int) -> tuple[np.ndarray, np.ndarray]:
  """(radius px, angle rad) of each pixel of a (size, size) stamp about its centre."""
  yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
  return np.hypot(yy, xx), np.arctan2(yy, xx)


def annulus_weights(size: int, annuli: int, width_px: float) -> np.ndarray:
  """(size, size, annuli) float32: each pixel's 1 / (pixels in its annulus) in its annulus."""
  ring = np.minimum((_polar(size)[0] / width_px).astype(int), annuli - 1)
  onehot = ring[..., None] == np.arange(annuli)
  return (onehot / np.maximum(onehot.sum((0, 1)), 1)).astype(np.float32)


def ring_harmonics(size: int, orders: Sequence[int], edges_px: Sequence[float]
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Per-pixel weights for the azimuthal amplitudes of a (size, size) stamp.

  Returns (harmonics (size, size, len(orders) x rings, 2) float32: cos and sin of m theta over
  the ring's pixel count, order-major; ring means (size, size, rings): 1 / pixel count).
  Ring j holds the pixels with edges_px[j] <= r < edges_px[j + 1] from the centre.
  """
  edges = np.asarray(edges_px, np.float64)
  if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
    raise ValueError(f"ring edges must be >= 2 increasing radii in px, got {list(edges_px)}")
  r, theta = _polar(size)
  rings = (r[..., None] >= edges[:-1]) & (r[..., None] < edges[1:])  # (S, S, rings)
  if np.any(rings.sum((0, 1)) == 0):
    raise ValueError(f"ring edges {list(edges_px)} leave a ring empty in a {size} px stamp")
  means = rings / rings.sum((0, 1))
  m = np.asarray(orders, np.float64)[:, None, None, None]  # (orders, 1, 1, 1)
  phase = np.stack([np.cos(m * theta[..., None]), np.sin(m * theta[..., None])], -1)
  harmonics = (means[None, ..., None] * phase).transpose(1, 2, 0, 3, 4)  # (S, S, O, R, 2)
  return (harmonics.reshape(size, size, -1, 2).astype(np.float32), means.astype(np.float32))


def count(bands: int, annuli: int, orders: Sequence[int] = (), rings: int = 0) -> int:
  """Number of descriptors for `bands` bands, `annuli` annuli, azimuthal orders and rings."""
  return (bands - 1) + (annuli - 1) + len(orders) * rings


def photometric_descriptors(images: jnp.ndarray, annuli: int = 10, width_px: float = 2.0,
                            eps: float = 0.05, orders: Sequence[int] = (),
                            ring_edges_px: Sequence[float] = RING_EDGES_PX) -> jnp.ndarray:
  """(B, S, S, C) centred stamps -> (B, count(C, annuli, orders, rings)) float32.

  Colours, profile shape, then the azimuthal amplitudes (order-major), as the module docstring.
  """
  if images.ndim != 4 or images.shape[1] != images.shape[2]:
    raise ValueError(f"expected square stamps (B, S, S, C), got {images.shape}")
  if images.shape[-1] < 2 or annuli < 2:
    raise ValueError("descriptors need at least 2 bands and 2 annuli")
  x = images.astype(jnp.float32)
  w = jnp.asarray(annulus_weights(images.shape[1], annuli, width_px))
  profile = jnp.einsum("bhwc,hwn->bnc", x, w)  # (B, annuli, C)
  total = profile.sum(axis=1)  # (B, C)
  colours = total[:, :-1] - total[:, 1:]
  summed = profile.sum(axis=2)  # (B, annuli)
  shape = summed[:, 1:] / (jnp.abs(summed[:, :1]) + eps)
  parts = [colours, shape]
  if len(orders):
    harmonics, means = ring_harmonics(images.shape[1], orders, ring_edges_px)
    light = x.sum(axis=-1)  # (B, S, S)
    cs = jnp.einsum("bhw,hwkp->bkp", light, jnp.asarray(harmonics))  # (B, O x R, 2)
    level = jnp.einsum("bhw,hwr->br", jnp.abs(light), jnp.asarray(means))  # (B, R)
    amplitude = jnp.sqrt(jnp.sum(jnp.square(cs), axis=-1) + 1e-12)
    parts.append(amplitude / (jnp.tile(level, (1, len(orders))) + eps))
  return jnp.concatenate(parts, axis=1)


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
