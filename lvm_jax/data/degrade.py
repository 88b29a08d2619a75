"""Image degradations for restoration training (blur + noise) and patch masking for inpainting.

Two degradation modes, both on (H, W, B) float images in nanomaggies:

* `paper`: as in Fu et al.: a Moffat blur of FWHM uniform in 2-8 pixels, then Gaussian noise of
  sigma uniform in 1-15 on a 0-255 *display scale*. The display scale is a per-image linear
  min-max map over all bands together, d = 255 (x - lo) / (hi - lo) with lo, hi the input's min and
  max; the noise is added in nanomaggies as sigma (hi - lo) / 255, which is the same as mapping to
  the display scale, adding noise and mapping back (nothing is clipped or quantised). The blur
  commutes with that affine map, so it is applied to the fluxes directly.
* `physical`: per band, blur from the current seeing to a target seeing (arcsec FWHM) with a
  Moffat of FWHM sqrt(target^2 - current^2) (exact for Gaussians, an approximation for Moffats),
  then Gaussian noise of sigma = noise_multiple x the band's own sky noise (1.4826 x MAD of the
  input band, nanomaggies, measured before the blur).

Moffat beta is fixed at 4.765 (Trujillo et al. 2001: the Moffat index that best matches a
Kolmogorov-turbulence seeing profile); the paper does not give one. Pass beta=3.5 for the heavier
wings typical of measured DECam PSFs.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lvm_jax.data import psf, ssl_schema

MOFFAT_BETA = 4.765
PAPER_FWHM_RANGE_PX = (2.0, 8.0)
PAPER_NOISE_RANGE_DISPLAY = (1.0, 15.0)
DISPLAY_MAX = 255.0
MASK_PATCH_SIZES = (4, 8, 16)
MAX_MASK_FRACTION = 0.7


def _check_image(image) -> np.ndarray:
  image = np.asarray(image, dtype=np.float32)
  if image.ndim != 3:
    raise ValueError(f"expected an (H, W, bands) image, got shape {image.shape}")
  if not np.isfinite(image).all():
    raise ValueError("image has NaN/inf pixels; validate it first (lvm_jax.data.validate)")
  return image


def _check_rng(rng) -> np.random.Generator:
  if not isinstance(rng, np.random.Generator):
    raise TypeError(f"pass an explicit np.random.Generator, got {type(rng).__name__}")
  return rng


def _per_band(value, n_bands: int, name: str) -> np.ndarray:
  v = np.asarray(value, dtype=np.float64)
  if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != n_bands):
    raise ValueError(f"{name}: expected a scalar or {n_bands} values, got {value!r}")
  return np.broadcast_to(v, (n_bands,)).copy()


def sky_sigma(image: np.ndarray) -> np.ndarray:
  """(B,) robust per-band pixel noise, 1.4826 x median absolute deviation (image units)."""
  flat = np.asarray(image, dtype=np.float64).reshape(-1, np.shape(image)[-1])
  return 1.4826 * np.median(np.abs(flat - np.median(flat, axis=0)), axis=0)


def display_range(image: np.ndarray) -> tuple[float, float]:
  """(lo, hi): the input values mapped to 0 and 255 on the paper's display scale."""
  return float(np.min(image)), float(np.max(image))


def _degrade_paper(image, rng, fwhm_range_px, noise_range_display, beta):
  lo, hi = display_range(image)
  if not hi > lo:
    raise ValueError("a constant image has no display scale")
  fwhm = float(rng.uniform(*fwhm_range_px))
  sigma_display = float(rng.uniform(*noise_range_display))
  blurred = psf.convolve_bands(image, psf.moffat_kernel(fwhm, beta))
  sigma = sigma_display * (hi - lo) / DISPLAY_MAX
  noisy = blurred + rng.normal(0.0, sigma, size=image.shape)
  params = {"mode": "paper", "fwhm_px": fwhm, "beta": beta, "noise_sigma_display": sigma_display,
            "noise_sigma": sigma, "display_lo": lo, "display_hi": hi}
  return noisy.astype(np.float32), params


def _degrade_physical(image, rng, current_fwhm_arcsec, target_fwhm_arcsec, noise_multiple,
                      pixel_scale, beta):
  if current_fwhm_arcsec is None or target_fwhm_arcsec is None:
    raise ValueError("physical mode needs current_fwhm_arcsec and target_fwhm_arcsec")
  n = image.shape[-1]
  current = _per_band(current_fwhm_arcsec, n, "current_fwhm_arcsec")
  target = _per_band(target_fwhm_arcsec, n, "target_fwhm_arcsec")
  if (target < current - 1e-9).any():
    raise ValueError(f"target seeing {target.tolist()} is sharper than current {current.tolist()}")
  multiple = _per_band(noise_multiple, n, "noise_multiple")
  sky = sky_sigma(image)
  kernel_fwhm_px = np.sqrt(np.maximum(target**2 - current**2, 0.0)) / pixel_scale
  out = np.empty_like(image)
  for b in range(n):
    kernel = psf.moffat_kernel(kernel_fwhm_px[b], beta) if kernel_fwhm_px[b] > 1e-6 else None
    out[..., b] = psf.convolve_bands(image[..., b:b + 1], kernel)[..., 0]
  sigma = multiple * sky
  out = out + rng.normal(size=image.shape) * sigma
  params = {"mode": "physical", "current_fwhm_arcsec": current.tolist(),
            "target_fwhm_arcsec": target.tolist(), "kernel_fwhm_px": kernel_fwhm_px.tolist(),
            "beta": beta, "pixel_scale": pixel_scale, "sky_sigma": sky.tolist(),
            "noise_multiple": multiple.tolist(), "noise_sigma": sigma.tolist()}
  return out.astype(np.float32), params


def degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    mode: str = "paper",
    *,
    beta: float = MOFFAT_BETA,
    fwhm_range_px: tuple[float, float] = PAPER_FWHM_RANGE_PX,
    noise_range_display: tuple[float, float] = PAPER_NOISE_RANGE_DISPLAY,
    current_fwhm_arcsec: float | Sequence[float] | None = None,
    target_fwhm_arcsec: float | Sequence[float] | None = None,
    noise_multiple: float | Sequence[float] = 1.0,
    pixel_scale: float = ssl_schema.PIXEL_SCALE_ARCSEC,
) -> tuple[np.ndarray, dict[str, Any]]:
  """Blurs and adds noise to an (H, W, B) image: (degraded (H, W, B) float32, parameters used).

  Args:
    image: (H, W, B) nanomaggies, finite and not constant.
    rng: the only source of randomness.
    mode: 'paper' or 'physical' (see the module docstring).
    beta: Moffat index for the blur kernels.
    fwhm_range_px, noise_range_display: paper mode's uniform ranges (pixels; 0-255 display units).
    current_fwhm_arcsec, target_fwhm_arcsec: physical mode's seeing per band (scalar or (B,)),
      e.g. current from the catalogue's `psfsize`.
    noise_multiple: physical mode's added noise per band, in units of the band's sky sigma.
    pixel_scale: arcsec per pixel (physical mode).
  """
  image = _check_image(image)
  _check_rng(rng)
  if mode == "paper":
    return _degrade_paper(image, rng, fwhm_range_px, noise_range_display, beta)
  if mode == "physical":
    return _degrade_physical(image, rng, current_fwhm_arcsec, target_fwhm_arcsec, noise_multiple,
                             pixel_scale, beta)
  raise ValueError(f"mode must be 'paper' or 'physical', got {mode!r}")


def mask_patches(image: np.ndarray, rng: np.random.Generator, patch_size: int = 16,
                 fraction: float = 0.5, fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
  """Sets a random `fraction` of the (patch_size, patch_size) cells of an (H, W, ...) image to `fill`.

  The grid starts at pixel (0, 0); when H or W is not a multiple of patch_size the last row/column
  of cells is partial. round(fraction x cells) cells are chosen without replacement.
  Returns (masked image, mask (H, W) bool, True where masked).
  """
  _check_rng(rng)
  if patch_size not in MASK_PATCH_SIZES:
    raise ValueError(f"patch_size must be one of {MASK_PATCH_SIZES}, got {patch_size}")
  if not 0.0 <= fraction <= MAX_MASK_FRACTION:
    raise ValueError(f"fraction must be in [0, {MAX_MASK_FRACTION}], got {fraction}")
  image = np.asarray(image)
  h, w = image.shape[:2]
  gh, gw = -(-h // patch_size), -(-w // patch_size)
  cells = np.zeros(gh * gw, dtype=bool)
  cells[rng.choice(gh * gw, size=int(round(fraction * gh * gw)), replace=False)] = True
  mask = np.repeat(np.repeat(cells.reshape(gh, gw), patch_size, 0), patch_size, 1)[:h, :w]
  masked = image.copy()
  masked[mask] = fill
  return masked, mask
