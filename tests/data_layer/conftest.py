"""Shared helpers for the data-layer tests: small synthetic FITS cutouts and galaxy images."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits


def galaxy_image(size: int = 64, bands: int = 3, seed: int = 0) -> np.ndarray:
  """(size, size, bands) float32: a round exponential blob plus sky noise, nanomaggies."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size] - (size - 1) / 2
  blob = np.exp(-np.hypot(x, y) / (size / 12))
  scales = np.linspace(0.5, 1.5, bands)
  sky = rng.normal(0, 0.005, size=(size, size, bands))
  return (blob[..., None] * scales + sky).astype(np.float32)


def write_cutout(path, cube_by_band: dict[str, np.ndarray], *, ra=10.0, dec=-5.0,
                 extra_hdus=(), band_keywords=True):
  """Writes a viewer-style cutout: planes in dict order named by BAND0.., TAN WCS at the centre."""
  cube = np.stack(list(cube_by_band.values())).astype(np.float32)
  h = fits.Header()
  if band_keywords:
    for i, b in enumerate(cube_by_band):
      h[f"BAND{i}"] = b
  n, ny, nx = cube.shape
  h.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
            "CRPIX1": (nx + 1) / 2, "CRPIX2": (ny + 1) / 2, "CD1_1": -0.262 / 3600,
            "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.262 / 3600})
  fits.HDUList([fits.PrimaryHDU(cube, h), *extra_hdus]).writeto(path, overwrite=True)
  return path


@pytest.fixture
def galaxy():
  return galaxy_image()


@pytest.fixture
def make_galaxy():
  return galaxy_image


@pytest.fixture
def make_cutout():
  return write_cutout
