"""Moffat point-spread functions: kernels, their measured width, and convolution of (H, W, bands) images.

I(r) ~ (1 + (r / a)^2)^(-beta), with a = FWHM / (2 sqrt(2^(1/beta) - 1)), all lengths in pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal


def moffat_alpha(fwhm: float, beta: float) -> float:
  """The Moffat core radius a (pixels) for a FWHM (pixels) and power index beta."""
  return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def default_kernel_size(fwhm: float) -> int:
  """The smallest odd integer >= 5 FWHM (at least 3)."""
  size = max(3, math.ceil(5.0 * fwhm - 1e-9))
  return size if size % 2 else size + 1


def moffat_kernel(fwhm: float, beta: float, size: int | None = None) -> np.ndarray:
  """(size, size) float64 Moffat kernel sampled at pixel centres, centred, summing to 1.

  Args:
    fwhm: full width at half maximum, pixels (> 0).
    beta: Moffat power index (> 1 for a finite flux; 4.765 for Kolmogorov turbulence).
    size: odd side in pixels; None means `default_kernel_size(fwhm)`. The truncated kernel is
      renormalised to sum 1.
  """
  if not fwhm > 0 or not math.isfinite(fwhm):
    raise ValueError(f"fwhm must be a positive number of pixels, got {fwhm}")
  if not beta > 0 or not math.isfinite(beta):
    raise ValueError(f"beta must be positive, got {beta}")
  size = default_kernel_size(fwhm) if size is None else int(size)
  if size < 1 or size % 2 == 0:
    raise ValueError(f"kernel size must be a positive odd integer, got {size}")
  a = moffat_alpha(fwhm, beta)
  x = np.arange(size) - (size - 1) / 2.0
  r2 = x[:, None] ** 2 + x[None, :] ** 2
  kernel = (1.0 + r2 / a**2) ** (-beta)
  return kernel / kernel.sum()


def measured_fwhm(kernel: np.ndarray) -> float:
  """FWHM (pixels) of a centred, odd-sized kernel: half-maximum crossing of its central row.

  The crossing is linearly interpolated between samples, so it is accurate to a few percent for
  FWHM >= 2 pixels; oversample the kernel for narrower ones.
  """
  kernel = np.asarray(kernel, dtype=np.float64)
  c = kernel.shape[0] // 2
  profile = kernel[c, c:] / kernel[c, c]
  below = np.flatnonzero(profile < 0.5)
  if below.size == 0:
    raise ValueError("the kernel does not fall to half maximum inside its support")
  i = below[0]
  r = (i - 1) + (profile[i - 1] - 0.5) / (profile[i - 1] - profile[i])
  return 2.0 * r


def convolve_bands(image: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
  """Convolves each band of an (H, W, B) image by a 2-D kernel, reflecting at the edges.

  `kernel` None leaves the band unchanged. Returns float32 (H, W, B).
  """
  image = np.asarray(image, dtype=np.float32)
  if kernel is None:
    return image.copy()
  pad = kernel.shape[0] // 2
  out = np.empty_like(image)
  for b in range(image.shape[-1]):
    padded = np.pad(image[..., b].astype(np.float64), pad, mode="reflect")
    out[..., b] = signal.fftconvolve(padded, kernel, mode="valid")
  return out
