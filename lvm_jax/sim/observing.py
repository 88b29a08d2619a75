"""Observing conditions of a DR9-south coadd: PSF FWHM, depth, sky noise, Galactic extinction.

Two footprints make up DR9 south; each stamp draws one (truth column `region`):

| region | PSF FWHM g / r / z (median, arcsec) | psfdepth g / r / z (median 5-sigma AB) |
| --- | --- | --- |
| `decals` | 1.40 / 1.25 / 1.15 | 24.40 / 23.85 / 22.95 |
| `des` | 1.31 / 0.96 / 0.91 | 25.36 / 25.22 / 24.19 |

DECaLS numbers are the medians of the DR9 coadd `psfsize_*` and `psfdepth_*` maps as described
in Dey et al. 2019 (AJ 157, 168, Sect. 4 and Fig. 9) and legacysurvey.org/dr9/description
(quoted from memory; no network here): seeing g 1.3-1.5", r 1.2-1.3", z 1.1-1.2"; depth
24.0-24.7 g, 23.4-24.1 r, 22.5-23.4 z. The DES-area values (DES DR2, Abbott et al. 2021,
reprocessed by legacypipe) are deeper and sharper; their medians were set so that the border sky
noise and stellar FWHM of the 14 real DR9 cutouts in `shared/data/desi_dr9_south` (all in the
DES equatorial stripe, RA 0-13 deg, |Dec| < 1.3) are reproduced; `lvm_jax.sim.realism` checks it.
Scatter: FWHM lognormal 0.08 dex in r, each band +-4 % about the region's band ratios; depth
Gaussian, DECaLS 0.15 mag shared + 0.2 mag per band, DES 0.06 + 0.06 mag. (The DES medians are
what a Gaussian-fit stellar FWHM of 1.43 / 1.04 / 0.99 arcsec, as measured on the real cutouts by
`realism.stellar_fwhm`, implies: that fit reads ~9 % above a Moffat's true FWHM.)

Sky noise from depth. The 5-sigma point-source depth m5 in AB mag gives the PSF-flux error
sigma_flux = 10^(-0.4 (m5 - 22.5)) / 5 nanomaggies, and DR9's `psfdepth = 1 / sigma_flux^2`
(1/nanomaggies^2). For optimal (PSF-weighted) photometry on white noise of per-pixel sigma
sigma_pix, sigma_flux = sigma_pix sqrt(NEA) with NEA = 1 / sum(P^2) the noise-equivalent area
of the unit-flux PSF P in pixels. For a Gaussian PSF (sigma_psf pixels) NEA = 4 pi sigma_psf^2;
for the Moffat (beta, scale radius alpha pixels) used here NEA = pi alpha^2 (2 beta - 1) /
(beta - 1)^2. Hence `sigma_pix = 10^(-0.4 (m5 - 22.5)) / 5 / sqrt(NEA)` nanomaggies per pixel.
Real coadd noise is correlated between neighbouring pixels (Lanczos resampling; measured
lag-1 correlation ~0.25 in the real cutouts), so the white noise is smoothed by a separable
[a, 1, a] kernel (a = 0.14, lag-1 correlation 0.27) and rescaled to keep sigma_pix per pixel.
"""

from __future__ import annotations

import dataclasses

import numpy as np

BAND_WAVELENGTH_NM = np.array([480.0, 640.0, 920.0])  # DECam g, r, z effective
# A_band / E(B-V) for DECam g, r, z used by DR9 (`mw_transmission`, Schlafly & Finkbeiner 2011).
EXTINCTION_COEFFICIENTS = np.array([3.214, 2.165, 1.211])
MOFFAT_BETA = 3.5
NOISE_KERNEL_WING = 0.14

REGIONS = ("decals", "des")
_MEDIAN_FWHM = {"decals": np.array([1.40, 1.25, 1.15]), "des": np.array([1.31, 0.96, 0.91])}
_MEDIAN_DEPTH = {"decals": np.array([24.40, 23.85, 22.95]), "des": np.array([25.36, 25.22, 24.19])}
# Depth scatter (mag): shared by the three bands, then per band. DES (10 tilings) is uniform.
_DEPTH_SCATTER = {"decals": (0.15, 0.20), "des": (0.06, 0.06)}
SEEING_SCATTER_DEX = 0.08
DES_FRACTION = 0.5  # DES covers ~5000 of DR9 south's ~9900 deg^2


@dataclasses.dataclass(frozen=True)
class Conditions:
  """One stamp's observing conditions; arrays are per band (g, r, z), shape (3,)."""
  region: str
  psf_fwhm_arcsec: np.ndarray
  depth_mag: np.ndarray  # 5-sigma PSF depth, AB mag
  ebv: float  # mag

  @property
  def psfdepth(self) -> np.ndarray:
    """DR9 `psfdepth`: inverse variance of the PSF flux, 1/nanomaggies^2, shape (3,)."""
    return depth_mag_to_psfdepth(self.depth_mag)

  def sky_sigma(self, pixel_scale: float) -> np.ndarray:
    """Per-pixel sky noise, nanomaggies, shape (3,)."""
    return sky_sigma_from_depth(self.depth_mag, self.psf_fwhm_arcsec / pixel_scale)


def depth_mag_to_psfdepth(m5: np.ndarray) -> np.ndarray:
  """5-sigma AB depth -> DR9 psfdepth (1/nanomaggies^2): m5 = 22.5 - 2.5 log10(5 / sqrt(psfdepth))."""
  sigma_flux = 10.0 ** (-0.4 * (np.asarray(m5, np.float64) - 22.5)) / 5.0
  return 1.0 / sigma_flux**2


def moffat_alpha(fwhm: np.ndarray, beta: float = MOFFAT_BETA) -> np.ndarray:
  """Moffat scale radius from FWHM (same units)."""
  return np.asarray(fwhm) / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_nea(fwhm_pix: np.ndarray, beta: float = MOFFAT_BETA) -> np.ndarray:
  """Noise-equivalent area 1 / integral(P^2) of an untruncated Moffat PSF, pixels."""
  alpha = moffat_alpha(fwhm_pix, beta)
  return np.pi * alpha**2 * (2.0 * beta - 1.0) / (beta - 1.0) ** 2


def sky_sigma_from_depth(m5: np.ndarray, fwhm_pix: np.ndarray) -> np.ndarray:
  """Per-pixel sky sigma (nanomaggies) for 5-sigma depth `m5` (AB) and Moffat FWHM in pixels."""
  sigma_flux = 10.0 ** (-0.4 * (np.asarray(m5, np.float64) - 22.5)) / 5.0
  return sigma_flux / np.sqrt(moffat_nea(fwhm_pix))


def draw_conditions(rng: np.random.Generator, des_fraction: float = DES_FRACTION) -> Conditions:
  """Draws a stamp's region, PSF FWHM (arcsec), depth (AB) and E(B-V) (mag)."""
  region = "des" if rng.random() < des_fraction else "decals"
  seeing_r = _MEDIAN_FWHM[region][1] * 10.0 ** (SEEING_SCATTER_DEX * rng.standard_normal())
  ratio = _MEDIAN_FWHM[region] / _MEDIAN_FWHM[region][1]
  fwhm = seeing_r * ratio * (1.0 + 0.04 * np.clip(rng.standard_normal(3), -2.5, 2.5))
  fwhm = np.round(np.clip(fwhm, 0.7, 2.5), 2)  # 0.01" steps: PSFs are cached by FWHM
  shared, per_band = _DEPTH_SCATTER[region]
  depth = (_MEDIAN_DEPTH[region] + shared * rng.standard_normal()
           + per_band * np.clip(rng.standard_normal(3), -2.5, 2.5))
  # High-latitude E(B-V): lognormal, median 0.03 mag (SFD at |b| > 30 deg).
  ebv = float(np.clip(0.03 * np.exp(0.5 * rng.standard_normal()), 0.005, 0.15))
  return Conditions(region, fwhm, depth, ebv)


def correlated_sky_noise(rng: np.random.Generator, sigma: np.ndarray, shape: tuple[int, int],
                         wing: float = NOISE_KERNEL_WING) -> np.ndarray:
  """Gaussian sky noise (3, H, W) with per-pixel std `sigma` (3,) and coadd-like correlation."""
  h, w = shape
  white = rng.standard_normal((3, h + 2, w + 2), dtype=np.float32)
  k = np.array([wing, 1.0, wing])
  rows = k[0] * white[:, :-2] + k[1] * white[:, 1:-1] + k[2] * white[:, 2:]
  both = k[0] * rows[:, :, :-2] + k[1] * rows[:, :, 1:-1] + k[2] * rows[:, :, 2:]
  both /= np.sum(k**2)  # unit variance per pixel
  return both * np.asarray(sigma, np.float32)[:, None, None]


def noise_lag1_correlation(wing: float = NOISE_KERNEL_WING) -> float:
  """Expected correlation of horizontally adjacent noise pixels for the [a, 1, a] kernel."""
  return 2.0 * wing / (1.0 + 2.0 * wing**2)


# Dark-sky surface brightness at CTIO, AB mag/arcsec^2 (DECam g, r, z; approximate): with the
# sky sigma it sets the effective number of photo-electrons per nanomaggy of the coadd.
SKY_MAG_PER_ARCSEC2 = np.array([22.0, 20.9, 18.8])
# Pixel value (nanomaggies) above which a single 90 s DECam exposure saturates (~1.3e5 e-,
# ~1,000-1,200 e- per nanomaggy): stars brighter than r ~ 14 have flat, clipped cores.
SATURATION_NMGY = np.array([130.0, 110.0, 120.0])


def source_noise(rng: np.random.Generator, noiseless: np.ndarray, sky_sigma: np.ndarray,
                 pixel_scale: float) -> np.ndarray:
  """Photon (Poisson, Gaussian approximation) noise of the sources, (3, H, W) nanomaggies.

  The sky of `SKY_MAG_PER_ARCSEC2` per pixel, s (nanomaggies), has variance sky_sigma^2 in
  the coadd, so one nanomaggy is g = s / sky_sigma^2 effective electrons and a source pixel of
  flux f adds variance f / g = sky_sigma^2 f / s.
  """
  sky_px = 10.0 ** (-0.4 * (SKY_MAG_PER_ARCSEC2 - 22.5)) * pixel_scale**2
  std = np.asarray(sky_sigma)[:, None, None] * np.sqrt(np.maximum(noiseless, 0.0) / sky_px[:, None, None])
  return (rng.standard_normal(noiseless.shape, dtype=np.float32) * std).astype(np.float32)


def saturate(image: np.ndarray) -> tuple[np.ndarray, int]:
  """Clips (3, H, W) pixels at `SATURATION_NMGY`; returns the image and the saturated r pixels."""
  levels = SATURATION_NMGY[:, None, None].astype(image.dtype)
  return np.minimum(image, levels), int((image[1] > levels[1]).sum())
