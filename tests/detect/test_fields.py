"""Simulated and real (FITS + CSV) wide fields: content, storage, errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lvm_jax.detect import fields


def test_simulated_fields_hold_lenses_with_boxes_masks_and_truth(small_fields, small_spec):
  spec = small_spec
  for f in small_fields:
    assert f.image.shape == (spec.size, spec.size, 3) and f.image.dtype == np.float32
    assert spec.lenses[0] <= f.num_lenses <= spec.lenses[1]
    assert f.masks.shape == (f.num_lenses, spec.size, spec.size)
    for box, mask, x, y in zip(f.boxes, f.masks, f.lenses["x"], f.lenses["y"]):
      ys, xs = np.nonzero(mask)
      np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
      assert mask[int(round(y)), int(round(x))], "the deflector centre is inside its mask"
    # the visible lenses by default: Einstein radii 1.2-3"
    lo, hi = spec.theta_e_range
    assert (lo, hi) == (1.2, 3.0)
    assert np.all((f.lenses["theta_e_arcsec"] >= lo) & (f.lenses["theta_e_arcsec"] <= hi))
    assert np.all(f.lenses["arc_snr"] > 0)
    classes = [o["class_name"] for o in f.meta["objects"]]
    assert classes.count("strong_lens") == f.num_lenses
    assert f.n_galaxies == len(classes) - f.num_lenses
  # The lens pixels are brighter than the median sky: the masks follow real light.
  f = small_fields[0]
  assert f.image[..., 1][f.masks[0]].mean() > 5 * np.median(np.abs(f.image[..., 1]))


def test_same_seed_same_field_and_other_index_differs(small_fields, small_spec):
  again = fields.simulate_field(7, 1, small_spec)
  np.testing.assert_array_equal(again.image, small_fields[1].image)
  np.testing.assert_array_equal(again.boxes, small_fields[1].boxes)
  assert not np.array_equal(small_fields[0].image, small_fields[1].image)


def test_lens_free_spec_gives_no_lenses():
  spec = fields.FieldSpec(size=96, lenses=(0, 0), mean_targets=2.0, impostor_fraction=1.0)
  f = fields.simulate_field(1, 0, spec)
  assert f.num_lenses == 0 and f.masks.shape == (0, 96, 96)
  assert f.n_impostors == f.n_galaxies


def test_field_file_round_trip_and_provenance(small_fields, field_file):
  ff = fields.FieldFile(field_file)
  assert len(ff) == len(small_fields)
  assert ff.provenance["seed"] == 7 and "git_sha" in ff.provenance
  for i, f in enumerate(small_fields):
    g = ff[i]
    np.testing.assert_array_equal(g.image, f.image)
    np.testing.assert_array_equal(g.boxes, f.boxes)
    np.testing.assert_array_equal(g.masks, f.masks)
    np.testing.assert_allclose(g.lenses["theta_e_arcsec"], f.lenses["theta_e_arcsec"])
    assert g.n_galaxies == f.n_galaxies and g.meta["index"] == i
  with pytest.raises(IndexError, match="fields.h5.*index 3"):
    ff[3]


def test_bad_field_file_errors_name_file_and_index(small_fields, tmp_path):
  path = fields.write_fields(tmp_path / "bad.h5", small_fields[:2], seed=0)
  with h5py.File(path, "r+") as h:
    h["images"][1, 5, 5, 0] = np.nan
  with pytest.raises(ValueError, match=r"bad\.h5: field 1 has NaN"):
    fields.FieldFile(path)[1]
  (tmp_path / "junk.h5").write_bytes(b"not hdf5")
  with pytest.raises(ValueError, match="junk.h5"):
    fields.FieldFile(tmp_path / "junk.h5")


def test_fits_field_with_lens_csv_gives_the_same_structure(small_fields, tmp_path):
  f = small_fields[1]
  path, radec = fields.write_fits_field(tmp_path / "field.fits", f, ra=150.0, dec=2.0)
  radius = 2.0  # arcsec
  rows = "\n".join(f"{r},{d},{radius},{t}" for r, d, t in
                   zip(radec["ra"], radec["dec"], f.lenses["theta_e_arcsec"]))
  (tmp_path / "lenses.csv").write_text("ra,dec,radius_arcsec,theta_e_arcsec\n" + rows + "\n"
                                       "10.0,-5.0,2.0,1.0\n")  # far off the field: dropped
  real = fields.read_fits_field(path, tmp_path / "lenses.csv")
  np.testing.assert_allclose(real.image, f.image)
  assert real.num_lenses == f.num_lenses
  assert real.meta["pixel_scale_arcsec"] == pytest.approx(fields.PIXEL_SCALE, rel=1e-6)
  np.testing.assert_allclose(real.lenses["x"], f.lenses["x"], atol=1e-3)
  np.testing.assert_allclose(real.lenses["y"], f.lenses["y"], atol=1e-3)
  r_px = radius / fields.PIXEL_SCALE
  for box, x, y, mask in zip(real.boxes, f.lenses["x"], f.lenses["y"], real.masks):
    assert box[0] == pytest.approx(x - r_px, abs=1.0) and box[2] == pytest.approx(x + r_px + 1, abs=1.0)
    assert box[1] == pytest.approx(y - r_px, abs=1.0) and box[3] == pytest.approx(y + r_px + 1, abs=1.0)
    assert mask.sum() == pytest.approx(np.pi * r_px**2, rel=0.15)
  np.testing.assert_allclose(real.lenses["theta_e_arcsec"], f.lenses["theta_e_arcsec"], rtol=1e-6)


def test_bad_lens_csv_names_file_and_row(tmp_path):
  (tmp_path / "bad.csv").write_text("ra,dec,radius_arcsec\n1,2,3\n1,x,3\n")
  with pytest.raises(ValueError, match=r"bad\.csv: row 1"):
    fields.read_lens_csv(tmp_path / "bad.csv")
  (tmp_path / "cols.csv").write_text("ra,dec\n1,2\n")
  with pytest.raises(ValueError, match="cols.csv: needs columns"):
    fields.read_lens_csv(tmp_path / "cols.csv")
