"""Detection of `--data` paths and the export's uniform records (no model involved)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.export import sources


def _cutout(path, ra, maskbits=None, objid=7):
  cube = np.random.default_rng(0).normal(0, 1, (3, 32, 32)).astype(np.float32)
  h = fits.Header({"BAND0": "g", "BAND1": "r", "BAND2": "z", "CTYPE1": "RA---TAN",
                   "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": 1.0, "CRPIX1": 16.5,
                   "CRPIX2": 16.5, "CD1_1": -0.262 / 3600, "CD1_2": 0.0, "CD2_1": 0.0,
                   "CD2_2": 0.262 / 3600, "OBJID": objid})
  hdus = [fits.PrimaryHDU(cube, h)]
  if maskbits is not None:
    hdus.append(fits.ImageHDU(maskbits, name="MASKBITS"))
  fits.HDUList(hdus).writeto(path)
  return path


def test_detects_each_kind(survey_dir, tmp_path):
  assert sources.detect(survey_dir) == "hdf5"
  assert sources.detect(next(survey_dir.glob("*.h5"))) == "hdf5"
  _cutout(tmp_path / "a.fits", 10.0)
  assert sources.detect(tmp_path) == "fits"
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError):
    sources.detect(tmp_path / "empty")


def test_fits_records_carry_header_keywords_and_centre_maskbits(tmp_path):
  mask = np.zeros((32, 32), np.int32)
  mask[16, 16] = 2 ** 1 | 2 ** 11
  _cutout(tmp_path / "b.fits", 20.0, maskbits=mask, objid=9)
  _cutout(tmp_path / "a.fits", 10.0)
  source = sources.open_source(tmp_path, carry=("OBJID",))
  first, second = source.record(0), source.record(1)
  assert (first["id"], first["mask_flags"], first["OBJID"]) == ("a", 0, 7)
  assert (second["id"], second["mask_flags"], second["OBJID"]) == ("b", 2050, 9)
  assert second["ra"] == pytest.approx(20.0)


def test_precropped_crop_must_match_the_checkpoint():
  class Stored:
    path = "x"
    preprocessed = Preprocessing(mode="paper", out_size=64)
  assert sources.input_preprocessing(Stored, Preprocessing(mode="paper", out_size=64)).mode \
      == "fixed"
  asinh = sources.input_preprocessing(Stored, Preprocessing(mode="paper", out_size=64,
                                                            normalisation="asinh"))
  assert asinh.normalisation == "asinh"
  with pytest.raises(ValueError, match="pre-cropped"):
    sources.input_preprocessing(Stored, Preprocessing(mode="resize", out_size=64))
