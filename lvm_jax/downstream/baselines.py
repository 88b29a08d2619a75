"""Classical restoration baselines with the known PSF: Wiener and Richardson-Lucy (scikit-image).

Both work per band on (H, W, B) images in linear flux (nanomaggies) with the exact blur kernel
that degraded them (`lvm_jax.data.psf.moffat_kernel`). Richardson-Lucy needs non-negative data:
the band is shifted by a constant above its minimum first and shifted back after (a constant is
unchanged by a normalised blur, so the model stays exact). Bands are reflect-padded by half the
kernel first, so neither method deconvolves against zeros (or wraps) at the edges. Wiener's `balance` (the noise to
signal regularisation) and Richardson-Lucy's iteration count are chosen on training images by
`tune`, never on the test set.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from skimage import restoration

METHODS = ("wiener", "richardson_lucy")


def _as_kernels(kernels, n_bands: int) -> list[np.ndarray]:
  if isinstance(kernels, np.ndarray) and kernels.ndim == 2:
    return [kernels] * n_bands
  kernels = list(kernels)
  if len(kernels) != n_bands:
    raise ValueError(f"{len(kernels)} kernels for {n_bands} bands")
  return kernels


def deconvolve(image: np.ndarray, kernels, method: str, strength: float) -> np.ndarray:
  """(H, W, B) float32 deconvolved image.

  Args:
    image: (H, W, B) linear fluxes.
    kernels: one (k, k) kernel for all bands or one per band (None: band left as is).
    method: 'wiener' (strength = balance) or 'richardson_lucy' (strength = iterations).
  """
  image = np.asarray(image, np.float64)
  out = np.empty_like(image)
  for b, kernel in enumerate(_as_kernels(kernels, image.shape[-1])):
    band = image[..., b]
    if kernel is None:
      out[..., b] = band
      continue
    scale = max(float(np.abs(band).max()), 1e-12)
    pad = kernel.shape[0] // 2  # reflect-pad so the edges are not deconvolved against zeros
    x = np.pad(band / scale, pad, mode="reflect")
    if method == "wiener":
      y = restoration.wiener(x, kernel, balance=float(strength), clip=False)
    elif method == "richardson_lucy":
      shift = 0.05 - min(float(x.min()), 0.0)
      y = restoration.richardson_lucy(x + shift, kernel, num_iter=int(strength), clip=False) \
          - shift
    else:
      raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    out[..., b] = y[pad:pad + band.shape[0], pad:pad + band.shape[1]] * scale
  return out.astype(np.float32)


def tune(method: str, grid: Sequence[float], degraded: Sequence[np.ndarray],
         kernels: Sequence, score: Callable[[np.ndarray, int], float]) -> float:
  """The grid value with the best mean `score(restored, i)` over the given (training) images."""
  best, best_score = grid[0], -np.inf
  for value in grid:
    s = np.mean([score(deconvolve(x, k, method, value), i)
                 for i, (x, k) in enumerate(zip(degraded, kernels))])
    if s > best_score:
      best, best_score = value, s
  return best
