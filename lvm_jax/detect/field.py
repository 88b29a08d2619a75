"""The `Field`: one wide survey image with its strong lenses as instances.

A `Field` is one (H, W, 3) g, r, z image in nanomaggies at 0.262 arcsec/px (row = +y = north,
column = +x = west, as in `lvm_jax.sim`) with its lens systems as instances:

- `boxes` (K, 4) float32 (x0, y0, x1, y1) field pixels, x1/y1 exclusive (a pixel i covers [i, i+1));
- `masks` (K, H, W) bool;
- `lenses` {column: (K,) array}: `x`, `y` (deflector centre, pixels), `theta_e_arcsec`, `arc_snr`,
  `mag_r` (deflector), `lensed_source_mag_r` (NaN where unknown, e.g. real fields).

Fields are simulated and stored by `lvm_jax.detect.fields`, read from FITS by
`lvm_jax.detect.fits_fields`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lvm_jax.data import ssl_schema

PIXEL_SCALE = ssl_schema.PIXEL_SCALE_ARCSEC
STAMP = ssl_schema.STAMP_SIZE
MASK_SB_MAG = 25.0  # AB mag / arcsec^2: the instance-mask threshold
LENS_COLUMNS = ("x", "y", "theta_e_arcsec", "arc_snr", "mag_r", "lensed_source_mag_r")


def mask_threshold_nmgy(pixel_scale: float = PIXEL_SCALE, sb_mag: float = MASK_SB_MAG) -> float:
  """Per-pixel flux (nanomaggies) of surface brightness `sb_mag` AB mag / arcsec^2."""
  return float(10.0 ** (-0.4 * (sb_mag - 22.5)) * pixel_scale**2)


@dataclasses.dataclass
class Field:
  """One field: image (H, W, 3) float32 g, r, z nanomaggies and its lens instances (see module)."""
  image: np.ndarray
  boxes: np.ndarray
  masks: np.ndarray
  lenses: dict[str, np.ndarray]
  n_galaxies: int = 0           # bright target galaxies (the denominator of FP per 10,000)
  n_impostors: int = 0
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)
  wcs_header: str | None = None  # FITS header text of a celestial WCS, when known

  @property
  def num_lenses(self) -> int:
    return int(self.boxes.shape[0])


def box_of(mask: np.ndarray) -> np.ndarray:
  """(4,) float32 (x0, y0, x1, y1) bounding box of a (H, W) bool mask, exclusive ends; zeros if empty."""
  ys, xs = np.nonzero(mask)
  if ys.size == 0:
    return np.zeros(4, np.float32)
  return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
