"""FITS cutouts: bands by keyword, centre RA/Dec from the WCS, extra planes, random-access source."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from astropy.io import fits

from lvm_jax.data import fits_cutout
from lvm_jax.data.validate import UnreadableFileError


def _name_radec(path):
  m = re.fullmatch(r"cutout_(-?[\d.]+)_(-?[\d.]+)", fits_cutout.cutout_id(path))
  return float(m.group(1)), float(m.group(2))


def test_real_cutouts_radec_and_bands(desi_dir):
  paths = sorted(desi_dir.glob("*.fits"))
  assert len(paths) == 14
  for path in paths:
    c = fits_cutout.read_fits_cutout(path)
    ra, dec = _name_radec(path)
    assert c.image.shape == (256, 256, 3) and c.image.dtype == np.float32
    assert c.bands == ("g", "r", "z")
    assert abs(c.ra - ra) < 1e-6 and abs(c.dec - dec) < 1e-6, path.name
    # Plane i of the file is band BANDi; the g, r, z order here equals the file's.
    raw = fits.getdata(path)
    np.testing.assert_array_equal(c.image[..., 2], raw[2])


def test_real_cutouts_reordered_bands(desi_dir):
  path = sorted(desi_dir.glob("*.fits"))[0]
  grz = fits_cutout.read_fits_cutout(path).image
  zg = fits_cutout.read_fits_cutout(path, bands=("z", "g")).image
  np.testing.assert_array_equal(zg, grz[..., [2, 0]])


def test_bands_chosen_by_keyword_not_position(tmp_path, make_cutout):
  g, r, z = (np.full((8, 10), v, np.float32) + np.arange(10) for v in (1.0, 2.0, 3.0))
  path = make_cutout(tmp_path / "zgr.fits", {"z": z, "g": g, "r": r}, ra=150.0, dec=2.0)
  c = fits_cutout.read_fits_cutout(path)
  np.testing.assert_array_equal(c.image[..., 0], g)
  np.testing.assert_array_equal(c.image[..., 1], r)
  np.testing.assert_array_equal(c.image[..., 2], z)
  assert c.image.shape == (8, 10, 3)
  assert c.ra == pytest.approx(150.0, abs=1e-9) and c.dec == pytest.approx(2.0, abs=1e-9)
  assert c.invvar is None and c.maskbits is None


def test_dr10_griz_file(tmp_path, make_cutout):
  planes = {b: np.full((6, 6), i + 1.0, np.float32) for i, b in enumerate("griz")}
  planes["g"][0, 0] = 9.0
  path = make_cutout(tmp_path / "dr10.fits", planes)
  c = fits_cutout.read_fits_cutout(path)
  np.testing.assert_array_equal(c.image[1, 1], [1.0, 2.0, 4.0])
  assert c.image[0, 0, 0] == 9.0
  assert fits_cutout.read_fits_cutout(path, bands=("i",)).image.shape == (6, 6, 1)


def test_missing_band_names_file_and_present_bands(tmp_path, make_cutout):
  path = make_cutout(tmp_path / "gr.fits", {"g": np.ones((4, 4)), "r": np.ones((4, 4))})
  with pytest.raises(ValueError, match=r"gr\.fits.*'z'.*\['g', 'r'\]"):
    fits_cutout.read_fits_cutout(path)


def test_unnamed_planes_rejected(tmp_path, make_cutout):
  path = make_cutout(tmp_path / "anon.fits", {"a": np.ones((4, 4)), "b": np.ones((4, 4)),
                                              "c": np.ones((4, 4))}, band_keywords=False)
  with pytest.raises(ValueError, match="anon.fits.*BAND0"):
    fits_cutout.read_fits_cutout(path)


def test_invvar_and_maskbits_hdus(tmp_path, make_cutout):
  ivar_h = fits.Header({"EXTNAME": "INVVAR", "BAND0": "r", "BAND1": "z", "BAND2": "g"})
  ivar = np.stack([np.full((5, 5), v, np.float32) for v in (20.0, 30.0, 10.0)])  # r, z, g
  mask = fits.ImageHDU(np.arange(25, dtype=np.int16).reshape(5, 5), name="MASKBITS")
  path = make_cutout(tmp_path / "ivar.fits", {b: np.ones((5, 5)) for b in "grz"},
                     extra_hdus=[fits.ImageHDU(ivar, ivar_h), mask])
  c = fits_cutout.read_fits_cutout(path)
  np.testing.assert_array_equal(c.invvar[0, 0], [10.0, 20.0, 30.0])
  assert c.maskbits.shape == (5, 5) and c.maskbits[4, 4] == 24


def test_truncated_fits_names_file(tmp_path, make_cutout):
  path = make_cutout(tmp_path / "trunc.fits", {b: np.ones((64, 64)) for b in "grz"})
  data = path.read_bytes()
  for n in (len(data) // 2, 1000):
    path.write_bytes(data[:n])
    with pytest.raises(UnreadableFileError, match="trunc.fits"):
      fits_cutout.read_fits_cutout(path)


def test_source_random_access(tmp_path, make_cutout):
  for i in range(3):
    make_cutout(tmp_path / f"cutout_{i}.fits",
                {b: np.full((4, 4), i + j, np.float32) for j, b in enumerate("rzg")}, ra=float(i))
  (tmp_path / "notes.txt").write_text("not a cutout")
  source = fits_cutout.FitsCutoutSource(tmp_path)
  assert len(source) == 3
  rec = pickle.loads(pickle.dumps(source))[2]
  assert rec["id"] == "cutout_2" and rec["source_index"] == 0
  assert rec["source_file"].endswith("cutout_2.fits")
  assert rec["bands"] == ("g", "r", "z")
  np.testing.assert_array_equal(rec["image"][0, 0], [4.0, 2.0, 3.0])
  assert rec["ra"] == pytest.approx(2.0)
  assert source[-1]["id"] == "cutout_2"
  with pytest.raises(IndexError):
    source[3]


def test_source_over_real_folder(desi_dir):
  source = fits_cutout.FitsCutoutSource(desi_dir)
  rec = source[0]
  assert len(source) == 14 and rec["image"].shape == (256, 256, 3)
  assert rec["id"] == "cutout_0.1286636143922805_-1.2130041122436523"
