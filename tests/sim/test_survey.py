"""The simulated survey: determinism, schema, classes with truth, prevalence, photometry, files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lvm_jax.data import ssl_schema
from lvm_jax.sim import classes, population, render, survey


@pytest.fixture(scope="module")
def small_survey():
  return survey.simulate_survey(6, seed=3, lens_fraction=0.3, workers=1)


def test_same_seed_same_pixels_for_any_worker_count(small_survey):
  images, catalogue, truth = small_survey
  again, catalogue2, truth2 = survey.simulate_survey(6, seed=3, lens_fraction=0.3, workers=2)
  np.testing.assert_array_equal(images, again)
  for k in catalogue:
    np.testing.assert_array_equal(catalogue[k], catalogue2[k])
  for k in truth:
    np.testing.assert_array_equal(truth[k], truth2[k])
  # A galaxy does not depend on the range it is simulated in.
  tail, _, _ = survey.simulate_range(4, 6, seed=3, lens_fraction=0.3, workers=1)
  np.testing.assert_array_equal(tail, images[4:])


def test_different_seeds_differ(small_survey):
  other, _, _ = survey.simulate_survey(2, seed=4, lens_fraction=0.3, workers=1)
  assert not np.array_equal(other, small_survey[0][:2])


def test_shapes_dtypes_and_columns_follow_ssl_schema(small_survey):
  images, catalogue, truth = small_survey
  assert images.shape == (6, 3, ssl_schema.STAMP_SIZE, ssl_schema.STAMP_SIZE)
  assert images.dtype == np.float32
  assert np.isfinite(images).all()
  assert set(catalogue) == set(ssl_schema.CATALOGUE_COLUMNS)
  for name, (shape, dtype) in ssl_schema.CATALOGUE_COLUMNS.items():
    assert catalogue[name].shape == (6, *shape), name
    assert catalogue[name].dtype == np.dtype(dtype), name
  ids = set(zip(catalogue["release"], catalogue["brickid"], catalogue["objid"]))
  assert len(ids) == 6
  assert set(catalogue["source_type"]) <= {b"DEV", b"EXP", b"SER", b"REX", b"PSF"}
  assert set(truth) == set(survey.TRUTH_COLUMNS)
  # psfdepth is the inverse variance of the 5-sigma depth: m5 = 22.5 - 2.5 log10(5 / sqrt(psfdepth)).
  m5 = 22.5 - 2.5 * np.log10(5 / np.sqrt(catalogue["psfdepth"]))
  np.testing.assert_allclose(m5[:, 1], truth["depth_mag_r"], atol=1e-3)
  np.testing.assert_allclose(catalogue["psfsize"][:, 0], truth["psf_fwhm_g"])


@pytest.mark.parametrize("name", classes.CLASS_NAMES)
def test_each_class_is_made_with_its_truth(name):
  _, _, truth = survey.simulate_survey(2, seed=11, prevalence={name: 1.0}, workers=1)
  assert (truth["class_id"] == classes.CLASS_IDS[name]).all()
  assert (truth["class_name"] == name.encode()).all()
  for col in ("mag_r", "hlr_arcsec", "sersic_n", "axis_ratio", "pa_deg", "redshift", "psf_fwhm_r"):
    assert np.isfinite(truth[col]).all(), col
  assert ((truth["pa_deg"] >= 0) & (truth["pa_deg"] < 180)).all()
  assert (truth["impostor_kind"] != b"").all() == (name == "lens_impostor")
  assert np.isfinite(truth["theta_e_arcsec"]).all() == (name == "strong_lens")
  if name == "edge_on_disk":
    assert ((truth["axis_ratio"] >= 0.12) & (truth["axis_ratio"] <= 0.3)).all()
  if name in ("face_on_spiral", "barred_spiral"):
    assert (truth["n_arms"] >= 2).all()
    assert truth["has_bar"].all() == (name == "barred_spiral")


def test_lens_truth_within_ranges():
  _, _, truth = survey.simulate_survey(4, seed=5, prevalence={"strong_lens": 1.0}, workers=1)
  assert ((truth["theta_e_arcsec"] >= 0.8) & (truth["theta_e_arcsec"] <= 3.0)).all()
  assert (truth["magnification"] > 1.5).all()
  assert (truth["arc_snr"] > 5).all()
  assert ((truth["shear_gamma"] >= 0) & (truth["shear_gamma"] <= 0.1)).all()
  np.testing.assert_allclose(truth["source_mag_r"] - truth["lensed_source_mag_r"],
                             2.5 * np.log10(truth["magnification"]), atol=1e-4)


def test_prevalence_is_respected():
  prevalence = {"elliptical": 3.0, "face_on_spiral": 1.0, "strong_lens": 0.5}
  p = classes.prevalence_probabilities(prevalence)
  n = 6000
  drawn = [survey.choose_class(survey.galaxy_rng(0, i), p) for i in range(n)]
  for name in classes.CLASS_NAMES:
    expected = p[classes.CLASS_IDS[name]]
    observed = drawn.count(name) / n
    assert abs(observed - expected) <= 4 * np.sqrt(expected * (1 - expected) / n) + 1e-12, name
  # The default makes lenses rare; lens_fraction fixes their share.
  default = classes.prevalence_probabilities()
  assert default[classes.CLASS_IDS["strong_lens"]] < 0.002
  with_lenses = classes.prevalence_probabilities(lens_fraction=0.1)
  assert with_lenses[classes.CLASS_IDS["strong_lens"]] == pytest.approx(0.1)
  with pytest.raises(ValueError):
    classes.prevalence_probabilities({"spiral": 1.0})


@pytest.mark.parametrize("name", [n for n in classes.CLASS_NAMES if n != "strong_lens"])
def test_flux_in_nanomaggies_matches_truth_magnitude(name):
  """Aperture (r < 18 arcsec) flux of the noiseless, PSF-convolved target vs its truth magnitude."""
  rng = survey.galaxy_rng(7, 0)
  comps, truth = population.draw_target(rng, name, 0.02, (17.0, 18.0))
  comps = [c for c in comps if c.kind != "image"]
  fwhm = np.array([1.3, 1.2, 1.1])
  image = render.draw_noiseless([comps], fwhm, 152, 0.262)[0]
  yy, xx = np.mgrid[:152, :152]
  aperture = np.hypot(yy - 75.5, xx - 75.5) * 0.262 < 18.0
  for b, band in enumerate("grz"):
    expected = 10 ** (-0.4 * (truth[f"mag_{band}"] - 22.5))
    assert image[b][aperture].sum() == pytest.approx(expected, rel=0.06), band


def test_noisy_stamp_flux_of_a_bright_isolated_elliptical():
  """On the final noisy stamp (neighbours included), a bright target's aperture flux is its truth flux."""
  images, catalogue, truth = survey.simulate_survey(4, seed=21, prevalence={"elliptical": 1.0},
                                                    workers=1, r_range=(16.5, 17.0))
  yy, xx = np.mgrid[:152, :152]
  aperture = np.hypot(yy - 75.5, xx - 75.5) * 0.262 < 12.0
  for img, flux, hlr in zip(images, catalogue["flux"], truth["hlr_arcsec"]):
    if hlr > 2.0:
      continue  # light beyond 12 arcsec
    measured = img[1][aperture].sum()
    assert measured == pytest.approx(flux[1], rel=0.12)


def test_written_file_is_readable_with_the_schema(tmp_path):
  paths = survey.write_survey(tmp_path, 5, seed=2, chunk=3, lens_fraction=0.5, workers=1)
  assert [p.split("/")[-1] for p in paths] == [ssl_schema.file_name(0, 3), ssl_schema.file_name(3, 5)]
  with h5py.File(paths[1], "r") as f:
    assert f[ssl_schema.IMAGES].shape == (2, 3, 152, 152)
    assert f[ssl_schema.IMAGES].dtype == np.float32
    for name, (shape, dtype) in ssl_schema.CATALOGUE_COLUMNS.items():
      assert f[name].shape == (2, *shape)
      assert f[name].dtype == np.dtype(dtype)
    group = f[ssl_schema.TRUTH_GROUP]
    assert set(group) == set(survey.TRUTH_COLUMNS)
    assert list(group["index"][:]) == [3, 4]
    direct, _, _ = survey.simulate_range(3, 5, seed=2, lens_fraction=0.5, workers=1)
    np.testing.assert_array_equal(f[ssl_schema.IMAGES][:], direct)


@pytest.mark.parametrize("name", ["smooth_disk", "edge_on_disk", "face_on_spiral", "barred_spiral"])
def test_bulge_fraction_truth_is_the_bulges_share_of_r_flux(name):
  comps, truth = population.draw_target(survey.galaxy_rng(2, 0), name, ebv=0.0)
  r = np.array([c.flux[1] for c in comps])
  emitted = r[r > 0]  # a dust lane's absorption has negative flux
  assert r[0] / emitted.sum() == pytest.approx(truth["bulge_fraction"], abs=1e-3)
  assert 22.5 - 2.5 * np.log10(r.sum()) == pytest.approx(truth["mag_r"], abs=1e-6)
