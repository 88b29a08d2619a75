"""Realism against the 14 real DR9 cutouts (skipped when shared data is absent), and the CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lvm_jax.sim import realism, survey


@pytest.fixture(scope="module")
def sim_set():
  return survey.simulate_survey(40, seed=8, workers=2)


def test_sky_noise_matches_real_cutouts(desi_dir, sim_set):
  images, _, truth = sim_set
  des = truth["region"] == b"des"  # the real cutouts lie in the DES area
  assert des.sum() >= 8
  sim = np.median(realism.sky_noise(images[des]), axis=0)
  real = np.median(realism.sky_noise(realism.real_cutouts_full(desi_dir)), axis=0)
  np.testing.assert_allclose(sim, real, rtol=0.2)


def test_sky_noise_measurement_recovers_the_truth(sim_set):
  images, _, truth = sim_set
  measured = realism.sky_noise(images)
  true = np.stack([truth["sky_sigma_g"], truth["sky_sigma_r"], truth["sky_sigma_z"]], axis=1)
  assert np.median(measured / true) == pytest.approx(1.0, abs=0.08)


def test_noise_correlation_matches_real_cutouts(desi_dir, sim_set):
  sim = np.median(realism.noise_correlation(sim_set[0]))
  real = np.median(realism.noise_correlation(realism.real_cutouts_full(desi_dir)))
  assert sim == pytest.approx(real, abs=0.1)


def test_simulate_command_writes_a_survey(tmp_path):
  from lvm_jax import cli
  assert cli.main(["simulate", "--n", "3", "--out", str(tmp_path), "--seed", "1",
                   "--lens-fraction", "0.5", "--workers", "1"]) == 0
  files = list(tmp_path.glob("images_npix152_*.h5"))
  assert len(files) == 1
  with h5py.File(files[0], "r") as f:
    assert f["images"].shape == (3, 3, 152, 152)
    assert "truth/class_name" in f
