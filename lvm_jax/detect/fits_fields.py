"""Real survey fields: a FITS cube with a celestial WCS and a lens catalogue CSV as a `Field`;
and a simulated `Field` written as such a FITS cube (`write_fits_field`).

Pixels in nanomaggies; positions in degrees (ra, dec) and field pixels; radii in arcsec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lvm_jax.detect.field import LENS_COLUMNS, PIXEL_SCALE, Field, box_of


def celestial_wcs(header):
  """The 2-axis astropy WCS of a FITS header (astropy's FITSFixedWarning silenced)."""
  import warnings
  from astropy.wcs import WCS, FITSFixedWarning
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FITSFixedWarning)
    return WCS(header, naxis=2)


def read_lens_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A lens catalogue CSV with columns `ra`, `dec` (deg) and `radius_arcsec` (or `radius`, arcsec).

  Optional `theta_e_arcsec`, `arc_snr` columns are carried. Bad rows raise naming file and row.
  """
  import csv
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    return {k: np.zeros(0) for k in ("ra", "dec", "radius_arcsec")}
  cols = {k.strip().lower(): k for k in rows[0]}
  radius_key = cols.get("radius_arcsec", cols.get("radius"))
  if "ra" not in cols or "dec" not in cols or radius_key is None:
    raise ValueError(f"{path}: needs columns ra, dec, radius_arcsec (found {list(rows[0])})")
  out = {k: [] for k in ("ra", "dec", "radius_arcsec", "theta_e_arcsec", "arc_snr")}
  for i, row in enumerate(rows):
    try:
      ra, dec, r = float(row[cols["ra"]]), float(row[cols["dec"]]), float(row[radius_key])
    except (TypeError, ValueError) as e:
      raise ValueError(f"{path}: row {i}: cannot read ra/dec/radius ({e})") from e
    if not (np.isfinite([ra, dec, r]).all() and r > 0 and -90 <= dec <= 90):
      raise ValueError(f"{path}: row {i}: invalid ra={ra}, dec={dec}, radius={r}")
    out["ra"].append(ra)
    out["dec"].append(dec)
    out["radius_arcsec"].append(r)
    for k in ("theta_e_arcsec", "arc_snr"):
      out[k].append(float(row[cols[k]]) if k in cols and row[cols[k]] not in ("", None) else np.nan)
  return {k: np.array(v, np.float64) for k, v in out.items()}


def pixel_scale_arcsec(header) -> float:
  """Mean pixel scale (arcsec/px) of a header's celestial WCS."""
  from astropy.wcs.utils import proj_plane_pixel_scales
  return float(np.mean(proj_plane_pixel_scales(celestial_wcs(header).celestial)) * 3600.0)


def read_fits_field(fits_path: str | os.PathLike, lens_csv: str | os.PathLike | None = None,
                    bands: Sequence[str] = ("g", "r", "z")) -> Field:
  """A real field (FITS cube named by BANDn keywords, celestial WCS) and its lenses from a CSV.

  Each catalogue lens inside the image becomes a box of +-radius about its WCS position and a
  disk mask of that radius (pixels from the WCS's pixel scale); lenses off the image are dropped.
  NaN/inf pixels raise, naming the file.
  """
  from lvm_jax.data import fits_cutout
  cut = fits_cutout.read_fits_cutout(fits_path, bands)
  image = cut.image
  bad = ~np.isfinite(image)
  if bad.any():
    y, x, b = np.argwhere(bad)[0]
    raise ValueError(f"{fits_path}: {int(bad.sum())} NaN/inf pixels "
                     f"(first at x={x}, y={y}, band {bands[b]})")
  h, w = image.shape[:2]
  wcs = celestial_wcs(cut.header)
  if not wcs.has_celestial:
    raise ValueError(f"{fits_path}: no celestial WCS")
  header_text = wcs.to_header().tostring()
  scale = pixel_scale_arcsec(cut.header)
  boxes, masks, rows = [], [], []
  if lens_csv is not None:
    cat = read_lens_csv(lens_csv)
    xs, ys = wcs.world_to_pixel_values(cat["ra"], cat["dec"])
    yy, xx = np.mgrid[:h, :w]
    for i, (x, y) in enumerate(zip(np.atleast_1d(xs), np.atleast_1d(ys))):
      r = cat["radius_arcsec"][i] / scale
      if not (-r <= x < w + r - 1 and -r <= y < h + r - 1):
        continue
      mask = np.hypot(xx - x, yy - y) <= r
      if not mask.any():
        continue
      masks.append(mask)
      boxes.append(box_of(mask))
      rows.append(dict(x=x, y=y, theta_e_arcsec=cat["theta_e_arcsec"][i], arc_snr=cat["arc_snr"][i],
                       mag_r=np.nan, lensed_source_mag_r=np.nan))
  lenses = {k: np.array([r[k] for r in rows], np.float32) for k in LENS_COLUMNS}
  return Field(image=image, boxes=np.array(boxes, np.float32).reshape(-1, 4),
               masks=np.array(masks, bool).reshape(-1, h, w), lenses=lenses,
               meta=dict(source=os.fspath(fits_path),
                         catalogue=os.fspath(lens_csv) if lens_csv else None,
                         pixel_scale_arcsec=scale),
               wcs_header=header_text)


def sim_field_header(field: Field, ra: float = 150.0, dec: float = 2.0) -> "Any":
  """A FITS header (TAN WCS at 0.262 arcsec/px, east left, BAND0..2 = g, r, z) for a simulated field."""
  from astropy.io import fits
  h, w = field.image.shape[:2]
  hdr = fits.Header()
  hdr.update(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=ra, CRVAL2=dec, CRPIX1=(w + 1) / 2,
             CRPIX2=(h + 1) / 2, CD1_1=-PIXEL_SCALE / 3600, CD1_2=0.0, CD2_1=0.0,
             CD2_2=PIXEL_SCALE / 3600, BAND0="g", BAND1="r", BAND2="z", BUNIT="nanomaggy")
  return hdr


def write_fits_field(path: str | os.PathLike, field: Field, ra: float = 150.0,
                     dec: float = 2.0) -> tuple[str, dict[str, np.ndarray]]:
  """Writes a simulated field as a FITS cube (3, H, W) with a WCS; returns (path, lens ra/dec)."""
  from astropy.io import fits
  hdr = sim_field_header(field, ra, dec)
  fits.PrimaryHDU(np.moveaxis(field.image, -1, 0).astype(np.float32), header=hdr).writeto(
      path, overwrite=True)
  world = celestial_wcs(hdr).pixel_to_world_values(field.lenses["x"], field.lenses["y"])
  return os.fspath(path), {"ra": np.atleast_1d(world[0]), "dec": np.atleast_1d(world[1])}
