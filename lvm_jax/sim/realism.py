"""Measures how a simulated set compares with real DR9 cutouts: sky noise, PSF, colours, sizes.

Every statistic is measured with the same code on simulated stamps and on the real cutouts in
`shared/data/desi_dr9_south` (14 DR9-south g, r, z cutouts, 256 x 256 px, all in the DES
equatorial stripe, centred on bright spiral galaxies). Because of that, sky and PSF rows compare
the simulated DES-region stamps with them, and colour/size rows compare a like-for-like simulated
set of bright (r = 14-16.5) disk galaxies. `realism_table()` returns the rows.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from lvm_jax.data import ssl_schema

BORDER_PX = 16
APERTURE_ARCSEC = 3.0


def _robust_sigma(x: np.ndarray, clip: float = 3.0, iterations: int = 5) -> float:
  x = x[np.isfinite(x)]
  for _ in range(iterations):
    med = np.median(x)
    s = 1.4826 * np.median(np.abs(x - med))
    x = x[np.abs(x - med) < clip * s]
  return float(1.4826 * np.median(np.abs(x - np.median(x))))


def border_pixels(image: np.ndarray, width: int = BORDER_PX) -> np.ndarray:
  """(3, n) pixels of the outer `width`-pixel frame of a (3, H, W) stamp."""
  mask = np.ones(image.shape[1:], bool)
  mask[width:-width, width:-width] = False
  return image[:, mask]


def sky_noise(images: np.ndarray, width: int = BORDER_PX) -> np.ndarray:
  """Per stamp and band sky sigma (N, 3), nanomaggies/px: 3-sigma-clipped MAD of border pixels."""
  return np.array([[_robust_sigma(b) for b in border_pixels(img, width)] for img in images])


def noise_correlation(images: np.ndarray, band: int = 1, width: int = BORDER_PX) -> np.ndarray:
  """Correlation of horizontally adjacent sky pixels in the bottom border strip, per stamp (N,)."""
  out = []
  for img in images:
    strip = img[band, :width, :].astype(np.float64)
    s = _robust_sigma(strip.ravel())
    strip = strip - np.median(strip)
    strip = np.where(np.abs(strip) < 3 * s, strip, 0.0)
    a, b = strip[:, 1:], strip[:, :-1]
    out.append((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
  return np.array(out)


def _fit_gaussian_fwhm(cut: np.ndarray) -> float:
  """FWHM (px) of a circular Gaussian + constant fitted to a small cutout (NaN on failure)."""
  from scipy.optimize import curve_fit
  n = cut.shape[0]
  yy, xx = np.mgrid[:n, :n]

  def model(_, amp, x0, y0, sigma, c):
    return (amp * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / sigma**2) + c).ravel()
  c0 = n // 2
  try:
    p, _ = curve_fit(model, None, cut.ravel(), p0=(cut[c0, c0], c0, c0, 2.0, 0.0), maxfev=2000)
  except (RuntimeError, ValueError):
    return np.nan
  sigma = abs(p[3])
  if not (0.5 < sigma < 8.0) or abs(p[1] - c0) > 2 or abs(p[2] - c0) > 2:
    return np.nan
  return float(2.3548 * sigma)


def stellar_fwhm(images: np.ndarray, pixel_scale: float = ssl_schema.PIXEL_SCALE_ARCSEC,
                 snr_min: float = 30.0, half: int = 6) -> np.ndarray:
  """Per stamp and band (N, 3) FWHM (arcsec) of the sharpest compact source (a star if any).

  Candidates are local maxima (in r) at >= `snr_min` sky sigmas, >= 12 px from the stamp centre
  (the target) and from the edges; each band's FWHM is a circular Gaussian fit to a
  (2 half + 1)^2 window; the stamp's value is the smallest candidate FWHM (stars are the
  sharpest objects). NaN where no candidate.
  """
  from scipy.ndimage import maximum_filter
  out = np.full((len(images), 3), np.nan)
  sky = sky_noise(images)
  for i, img in enumerate(images):
    r = img[1] - np.median(border_pixels(img)[1])
    h, w = r.shape
    peaks = (r == maximum_filter(r, size=7)) & (r > snr_min * sky[i, 1])
    ys, xs = np.nonzero(peaks)
    best = np.full(3, np.inf)
    for y, x in zip(ys, xs):
      if (np.hypot(y - (h - 1) / 2, x - (w - 1) / 2) < 12 or y < half + 2 or x < half + 2
          or y > h - half - 3 or x > w - half - 3):
        continue
      fw = [_fit_gaussian_fwhm(img[b, y - half:y + half + 1, x - half:x + half + 1]
                               - np.median(border_pixels(img)[b])) for b in range(3)]
      if np.isfinite(fw[1]) and fw[1] < best[1] and all(np.isfinite(fw)):
        best = np.array(fw)
    if np.isfinite(best).all():
      out[i] = best * pixel_scale
  return out


def central_photometry(images: np.ndarray, pixel_scale: float = ssl_schema.PIXEL_SCALE_ARCSEC,
                       aperture_arcsec: float = APERTURE_ARCSEC, max_radius_px: int = 60) -> dict:
  """Colours within a central aperture and the r-band half-light radius from a curve of growth.

  Returns {"g_r", "r_z": (N,) AB colours in the aperture, "r50_arcsec": (N,) radius enclosing
  half the r flux within `max_radius_px`, "mag_r": (N,) r within `max_radius_px`}; sky is the
  border median. Neighbours inside the radius are included, as in any aperture measurement.
  """
  out = {"g_r": [], "r_z": [], "r50_arcsec": [], "mag_r": []}
  for img in images:
    h, w = img.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    rad = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    sub = img - np.median(border_pixels(img), axis=1)[:, None, None]
    ap = rad <= aperture_arcsec / pixel_scale
    f = np.array([sub[b][ap].sum() for b in range(3)])
    with np.errstate(invalid="ignore", divide="ignore"):
      out["g_r"].append(-2.5 * np.log10(f[0] / f[1]))
      out["r_z"].append(-2.5 * np.log10(f[1] / f[2]))
    radius = min(max_radius_px, h // 2 - 1)
    order = np.argsort(rad[rad <= radius])
    cum = np.cumsum(sub[1][rad <= radius][order])
    total = cum[-1]
    k = int(np.searchsorted(cum, total / 2))
    out["r50_arcsec"].append(rad[rad <= radius][order][min(k, len(order) - 1)] * pixel_scale)
    out["mag_r"].append(22.5 - 2.5 * np.log10(max(total, 1e-9)))
  return {k: np.array(v) for k, v in out.items()}


def real_cutouts_full(desi_dir: str | os.PathLike) -> np.ndarray:
  """The real cutouts at full size (n, 3, 256, 256), bands g, r, z."""
  from lvm_jax.sim.gallery import real_cutouts
  return real_cutouts(desi_dir, stamp=256)


@dataclasses.dataclass
class Row:
  quantity: str
  sim_median: float
  sim_iqr: float
  real_median: float
  real_iqr: float
  documented: str
  tolerance: str
  passed: bool

  def format(self) -> str:
    return (f"| {self.quantity} | {self.sim_median:.4g} ({self.sim_iqr:.2g}) | "
            f"{self.real_median:.4g} ({self.real_iqr:.2g}) | {self.documented} | {self.tolerance} | "
            f"{'pass' if self.passed else 'FAIL'} |")


def _stats(x: np.ndarray) -> tuple[float, float]:
  x = np.asarray(x, np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return np.nan, np.nan
  q1, med, q3 = np.percentile(x, [25, 50, 75])
  return float(med), float(q3 - q1)


def _row(name, sim, real, documented, tol, kind) -> Row:
  (sm, si), (rm, ri) = _stats(sim), _stats(real)
  ok = abs(sm / rm - 1) <= tol if kind == "ratio" else abs(sm - rm) <= tol
  label = f"+-{tol:.0%}" if kind == "ratio" else f"+-{tol:g}"
  return Row(name, sm, si, rm, ri, documented, label, bool(ok))


def _expected_sky(region: str) -> np.ndarray:
  from lvm_jax.sim import observing
  fwhm = observing._MEDIAN_FWHM[region] / ssl_schema.PIXEL_SCALE_ARCSEC
  return observing.sky_sigma_from_depth(observing._MEDIAN_DEPTH[region], fwhm)


def realism_table(desi_dir: str | os.PathLike | None = None, n_sim: int = 300, n_bright: int = 60,
                  seed: int = 0, workers: int | None = None) -> list[Row]:
  """Rows (quantity, simulated median/IQR, real median/IQR, DR9 documented value, tolerance, pass).

  Simulates `n_sim` default-survey stamps (sky, PSF rows use their DES-region ones, DECaLS rows
  compare with the documented medians) and `n_bright` bright disk galaxies (colour, size rows).
  """
  from lvm_jax import shared_paths
  from lvm_jax.sim import survey
  desi_dir = desi_dir or shared_paths.desi_cutouts_dir()
  real = real_cutouts_full(desi_dir)
  images, _, truth = survey.simulate_survey(n_sim, seed=seed, workers=workers)
  des = truth["region"] == b"des"
  decals = ~des
  rows = []
  sim_sky, real_sky = sky_noise(images), sky_noise(real)
  for b, band in enumerate(ssl_schema.BANDS):
    exp = _expected_sky("des")[b]
    rows.append(_row(f"sky sigma {band}, DES area [nmgy/px]", sim_sky[des, b], real_sky[:, b],
                     f"{exp:.4f} (formula, DES medians)", 0.2, "ratio"))
  for b, band in enumerate(ssl_schema.BANDS):
    exp = _expected_sky("decals")[b]
    (sm, si) = _stats(sim_sky[decals, b])
    rows.append(Row(f"sky sigma {band}, DECaLS area [nmgy/px]", sm, si, np.nan, np.nan,
                    f"{exp:.4f} (formula, DR9 medians)", "+-20% of documented",
                    bool(abs(sm / exp - 1) <= 0.2)))
  rows.append(_row("sky lag-1 correlation r", noise_correlation(images[des]), noise_correlation(real),
                   "Lanczos3 resampling", 0.1, "abs"))
  sim_fwhm, real_fwhm = stellar_fwhm(images[des]), stellar_fwhm(real)
  documented = {"g": "1.3-1.5 (DECaLS)", "r": "1.2-1.3 (DECaLS)", "z": "1.1-1.2 (DECaLS)"}
  for b, band in enumerate(ssl_schema.BANDS):
    rows.append(_row(f"stellar FWHM {band}, DES area [arcsec]", sim_fwhm[:, b], real_fwhm[:, b],
                     documented[band], 0.15, "ratio"))
  bright, _, _ = survey.simulate_survey(
      n_bright, seed=seed + 1, workers=workers, r_range=(14.0, 16.5),
      prevalence={"smooth_disk": 1, "face_on_spiral": 2, "barred_spiral": 2, "edge_on_disk": 0.5})
  sim_phot, real_phot = central_photometry(bright), central_photometry(real)
  rows.append(_row("g-r in 3\" aperture, bright disks", sim_phot["g_r"], real_phot["g_r"],
                   "0.6-0.9 (SDSS spirals, z<0.1)", 0.15, "abs"))
  rows.append(_row("r-z in 3\" aperture, bright disks", sim_phot["r_z"], real_phot["r_z"],
                   "0.4-0.7", 0.15, "abs"))
  rows.append(_row("r50 (curve of growth) bright disks [arcsec]", sim_phot["r50_arcsec"],
                   real_phot["r50_arcsec"], "-", 0.4, "ratio"))
  rows.append(_row("r mag within 15.7\", bright disks", sim_phot["mag_r"], real_phot["mag_r"],
                   "-", 1.0, "abs"))
  return rows


def format_table(rows: list[Row]) -> str:
  head = ("| quantity | sim median (IQR) | real median (IQR) | DR9 documented | tolerance | pass |\n"
          "| --- | --- | --- | --- | --- | --- |")
  return "\n".join([head] + [r.format() for r in rows])
