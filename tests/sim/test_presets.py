"""Named presets (selections, stamp sizes, class mixes), visible lenses and reproducible files."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.sim import classes, commands, presets, survey


def test_command_preset_names_are_the_presets():
  assert commands.PRESET_NAMES == tuple(presets.PRESETS)
  with pytest.raises(ValueError):
    presets.get_preset("sdss")


def test_faint_is_the_default_survey():
  a = survey.simulate_survey(2, seed=1, workers=1)
  b = survey.simulate_survey(2, seed=1, workers=1, preset="faint")
  np.testing.assert_array_equal(a[0], b[0])
  assert presets.get_preset().selection.r_range == (16.5, 21.0)


def test_gzd_keeps_bright_galaxies_with_its_class_mix():
  _, _, truth = survey.simulate_survey(3, seed=2, workers=1, preset="gzd")
  dimming = 2.165 * truth["ebv"]  # truth magnitudes include Galactic extinction
  assert ((truth["mag_r"] - dimming >= 14.0 - 0.5) & (truth["mag_r"] - dimming <= 17.77 + 1e-3)).all()
  p = classes.prevalence_probabilities(presets.PRESETS["gzd"].prevalence)
  assert p[classes.CLASS_IDS["strong_lens"]] == pytest.approx(1e-3, rel=0.05)
  assert p[classes.CLASS_IDS["elliptical"]] + p[classes.CLASS_IDS["smooth_disk"]] > 0.4


def test_bgs_bright_has_big_galaxies_on_192_px_stamps():
  images, _, truth = survey.simulate_survey(2, seed=3, workers=1, preset="bgs_bright",
                                            prevalence={"face_on_spiral": 1.0, "strong_lens": 1.0})
  assert images.shape == (2, 3, 192, 192)
  assert ((truth["hlr_arcsec"] >= 6.4) & (truth["hlr_arcsec"] <= 9.6)).all()


def test_lens_training_is_balanced_with_visible_einstein_radii():
  p = classes.prevalence_probabilities(presets.PRESETS["lens_training"].prevalence, 0.5)
  assert p[classes.CLASS_IDS["strong_lens"]] == pytest.approx(0.5)
  assert p[classes.CLASS_IDS["lens_impostor"]] > 0.2
  _, _, truth = survey.simulate_survey(3, seed=4, workers=1, preset="lens_training", lens_fraction=1.0)
  assert ((truth["theta_e_arcsec"] >= 1.2) & (truth["theta_e_arcsec"] <= 3.0)).all()
  assert (truth["arc_snr"] > 10).all()


def test_lens_arc_appears_in_the_deflector_subtracted_residual_at_the_einstein_radius():
  preset = presets.get_preset("lens_training")
  p = classes.prevalence_probabilities({"strong_lens": 1.0})
  image, _, truth, layers = survey.simulate_galaxy(7, 0, p, selection=preset.selection, layers=True)
  theta_e, sky = truth["theta_e_arcsec"], truth["sky_sigma_r"]
  residual = image[1] - layers["target"][1]
  again, again_residual, again_truth = survey.deflector_subtracted(7, 0, "lens_training", lens_fraction=1.0)
  np.testing.assert_array_equal(again[1], image[1])  # re-made from the seed and index
  np.testing.assert_allclose(again_residual[1], residual)
  assert again_truth["theta_e_arcsec"] == theta_e
  n = image.shape[-1]
  rr = np.hypot(*(np.mgrid[:n, :n] - (n - 1) / 2)) * 0.262
  arc = layers["arc"][1]
  on_arc = arc > 0.3 * arc.max()
  assert abs(np.median(rr[on_arc]) - theta_e) < 0.4 * theta_e  # the arc lies at the Einstein radius
  assert residual[on_arc].mean() > 3 * sky  # and stands out in the residual
  away = (rr > theta_e + 3.0) & (rr < theta_e + 4.0)
  assert residual[on_arc].mean() > 5 * abs(residual[away].mean())
  assert image[1][on_arc].mean() > residual[on_arc].mean() + 0.5 * sky  # the deflector was there


def test_lensed_sources_have_clumps_and_impostors_every_kind():
  from lvm_jax.sim import lens_systems
  from lvm_jax.sim.scaling import Selection
  counts = [lens_systems.lensed_source(survey.galaxy_rng(0, i), 2.0)["clumps"].shape[0] for i in range(40)]
  assert max(counts) >= 3 and min(counts) == 0
  kinds = {lens_systems.lens_impostor(survey.galaxy_rng(1, i), 0.03, Selection())[1]["impostor_kind"]
           for i in range(80)}
  assert kinds == set(classes.IMPOSTOR_KINDS)


def test_same_seed_writes_byte_identical_files(tmp_path):
  paths = [survey.write_survey(tmp_path / name, 3, seed=5, lens_fraction=0.5, workers=1)[0]
           for name in ("a", "b")]
  data = [open(p, "rb").read() for p in paths]
  assert data[0] == data[1]
  other = survey.write_survey(tmp_path / "c", 3, seed=6, lens_fraction=0.5, workers=1)[0]
  assert open(other, "rb").read() != data[0]


def test_simulate_command_takes_a_preset(tmp_path):
  import json

  import h5py

  from lvm_jax import cli
  assert cli.main(["simulate", "--preset", "bgs_bright", "--n", "1", "--out", str(tmp_path),
                   "--workers", "1"]) == 0
  (path,) = tmp_path.glob("images_npix192_*.h5")
  with h5py.File(path, "r") as f:
    assert f["images"].shape == (1, 3, 192, 192)
    config = json.loads(f.attrs["sim_config"])
    assert config["preset"] == "bgs_bright" and config["hlr_range"] == [6.4, 9.6]
    assert 6.4 <= f["truth/hlr_arcsec"][0] <= 9.6
