"""Physics of the simulation: sky noise from depth, orientation convention, lensing."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.sim import lensing, observing, render
from lvm_jax.sim.components import Component


def test_sky_sigma_gives_the_stated_psf_depth():
  """PSF-weighted flux error on white noise of the formula's sigma equals 1 / sqrt(psfdepth)."""
  fwhm_arcsec, m5 = 1.2, 23.9
  sigma_pix = observing.sky_sigma_from_depth(m5, fwhm_arcsec / 0.262)
  psf = render.band_psf(fwhm_arcsec).drawImage(nx=61, ny=61, scale=0.262).array
  psf /= psf.sum()
  sigma_flux = sigma_pix / np.sqrt(np.sum(psf**2))  # optimal (PSF-weighted) photometry
  assert sigma_flux == pytest.approx(1 / np.sqrt(observing.depth_mag_to_psfdepth(m5)), rel=0.04)


def test_correlated_noise_keeps_per_pixel_sigma_and_correlation():
  noise = observing.correlated_sky_noise(np.random.default_rng(0), np.array([1.0, 2.0, 3.0]), (200, 200))
  np.testing.assert_allclose(noise.std(axis=(1, 2)), [1.0, 2.0, 3.0], rtol=0.03)
  r = noise[1]
  corr = (r[:, 1:] * r[:, :-1]).mean() / r.var()
  assert corr == pytest.approx(observing.noise_lag1_correlation(), abs=0.03)


@pytest.mark.parametrize("pa, axis", [(0.0, "y"), (90.0, "x"), (45.0, "ne"), (135.0, "nw")])
def test_position_angle_is_east_of_north_with_north_up_east_left(pa, axis):
  c = Component("sersic", np.ones(3), dict(n=1.0, hlr=3.0, q=0.3, pa=pa, x=0.0, y=0.0))
  img = render.draw_noiseless([[c]], np.array([1.0, 1.0, 1.0]), 64, 0.262)[0][1]
  yy, xx = np.mgrid[:64, :64] - 31.5
  ixx, iyy, ixy = [(img * w).sum() / img.sum() for w in (xx * xx, yy * yy, xx * yy)]
  if axis == "y":
    assert iyy > 3 * ixx
  elif axis == "x":
    assert ixx > 3 * iyy
  elif axis == "ne":  # north-east = up and left: x decreases as y increases
    assert ixy < -0.3 * np.sqrt(ixx * iyy)
  else:
    assert ixy > 0.3 * np.sqrt(ixx * iyy)


@pytest.mark.parametrize("q", [0.5, 0.8])
def test_sie_convergence_is_half_the_divergence_of_the_deflection(q):
  h, theta_e, pa = 1e-4, 1.3, 30.0
  for x, y in [(0.7, 0.3), (-1.2, 0.9)]:
    ax1, _ = lensing.sie_deflection(np.array(x + h), np.array(y), theta_e, q, pa)
    ax0, _ = lensing.sie_deflection(np.array(x - h), np.array(y), theta_e, q, pa)
    _, ay1 = lensing.sie_deflection(np.array(x), np.array(y + h), theta_e, q, pa)
    _, ay0 = lensing.sie_deflection(np.array(x), np.array(y - h), theta_e, q, pa)
    kappa = ((ax1 - ax0) + (ay1 - ay0)) / (4 * h)
    phi = np.deg2rad(pa + 90)
    u, v = x * np.cos(phi) + y * np.sin(phi), -x * np.sin(phi) + y * np.cos(phi)
    assert kappa == pytest.approx(theta_e * np.sqrt(q) / (2 * np.hypot(q * u, v)), rel=1e-5)


def test_ray_trace_conserves_flux_without_a_lens_and_magnifies_with_one():
  source = dict(x0=0.05, y0=0.02, n=1.0, hlr=0.3, q=0.7, pa_deg=20.0)
  no_lens = dict(theta_e=1e-6, q=0.8, pa=0.0, gamma=0.0, gamma_angle=0.0)
  _, mu0 = lensing.ray_trace(no_lens, source, 0.0655, 4.0)
  assert mu0 == pytest.approx(1.0, abs=0.01)
  lens = dict(theta_e=1.5, q=0.8, pa=0.0, gamma=0.05, gamma_angle=0.0)
  image, mu = lensing.ray_trace(lens, source, 0.0655, 4.0)
  assert mu > 5
  yy, xx = (np.mgrid[:image.shape[0], :image.shape[1]] - (image.shape[0] - 1) / 2) * 0.0655
  ring = image[np.abs(np.hypot(xx, yy) - 1.5) < 0.5].sum() / image.sum()
  assert ring > 0.8  # the light lies near the Einstein radius


def test_galsim_is_only_imported_by_the_command_when_run():
  import subprocess
  import sys
  code = "import sys, lvm_jax.cli; lvm_jax.cli.build_parser(); print('galsim' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def _intrinsic(c: Component, size: int = 401, scale: float = 0.05) -> np.ndarray:
  return render.unit_profile(c, 0.262).drawImage(nx=size, ny=size, scale=scale).array


def test_edge_on_truth_axis_ratio_is_the_disks_second_moment_ratio():
  from lvm_jax.sim import morphology, survey
  from lvm_jax.sim.scaling import Selection
  comps, truth = morphology.edge_on_disk(survey.galaxy_rng(0, 1), 0.0, Selection())
  img = _intrinsic(comps[1])
  yy, xx = np.mgrid[:401, :401] - 200.0
  ixy = (img * xx * yy).sum()
  m = np.array([[(img * xx * xx).sum(), ixy], [ixy, (img * yy * yy).sum()]])
  ev = np.linalg.eigvalsh(m / img.sum())
  assert np.sqrt(ev[0] / ev[1]) == pytest.approx(truth["axis_ratio"], abs=0.01)


def test_sersic_hlr_is_the_semi_major_half_light_radius():
  c = Component("sersic", np.ones(3), dict(n=4.0, hlr=2.0, q=0.5, pa=30.0, x=0.0, y=0.0))
  img = _intrinsic(c, size=801)
  from lvm_jax.sim.structures import galaxy_frame
  yy, xx = (np.mgrid[:801, :801] - 400.0) * 0.05
  u, v = galaxy_frame(xx, yy, 0.0, 0.0, 0.5, 30.0)
  assert img[np.hypot(u, v) < 2.0].sum() / img.sum() == pytest.approx(0.5, abs=0.02)
