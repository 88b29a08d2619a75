"""Structures that show: each is in the truth and changes the image where it should."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.sim import morphology, render, survey
from lvm_jax.sim.components import Component
from lvm_jax.sim.scaling import Selection
from lvm_jax.sim.structures import galaxy_frame

SCALE = 0.262
FWHM = np.array([1.0, 1.0, 1.0])
BRIGHT = Selection(r_range=(15.0, 16.0))


def _draw(comps, stamp=128):
  return render.draw_noiseless([comps], FWHM, stamp, SCALE)[0]


def _fourier_amplitude(image, m, q, pa, r_lo, r_hi, width=0.6):
  """Mean over deprojected annuli (`width` arcsec, r_lo..r_hi arcsec) of |A_m| / A_0, the
  relative azimuthal Fourier amplitude (per annulus, since arms wind with radius)."""
  n = image.shape[0]
  yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * SCALE
  u, v = galaxy_frame(xx, yy, 0.0, 0.0, q, pa)
  r, theta = np.hypot(u, v), np.arctan2(v, u)
  out = []
  for lo in np.arange(r_lo, r_hi - width, width):
    ring = (r > lo) & (r < lo + width)
    w = image[ring]
    if w.size < 20:
      continue
    out.append(abs((w * np.exp(-1j * m * theta[ring])).sum()) / w.sum())
  return float(np.mean(out))


def _spiral_with(n_arms: int):
  for i in range(200):
    comps, truth = morphology.face_on_spiral(survey.galaxy_rng(5, i), 0.0, BRIGHT)
    if truth["n_arms"] == n_arms and truth["axis_ratio"] > 0.8 and not truth["has_ring"]:
      return comps, truth
  raise AssertionError("no such spiral drawn")


def test_arms_raise_the_m2_fourier_amplitude_of_the_disk():
  comps, truth = _spiral_with(2)
  arms = comps[-1]
  assert arms.params["pattern"] == "spiral"
  smooth = Component("sersic", arms.flux, dict(n=1.0, hlr=truth["hlr_arcsec"], q=truth["axis_ratio"],
                                              pa=truth["pa_deg"], x=0.0, y=0.0))
  with_arms, without = _draw(comps)[1], _draw(comps[:-1] + [smooth])[1]
  r_lo, r_hi = arms.params["r_in"], 2.5 * truth["hlr_arcsec"]
  q, pa = truth["axis_ratio"], truth["pa_deg"]
  a_arms = _fourier_amplitude(with_arms, 2, q, pa, r_lo, r_hi)
  a_smooth = _fourier_amplitude(without, 2, q, pa, r_lo, r_hi)
  assert a_arms > max(2.0 * a_smooth, a_smooth + 0.05), (a_arms, a_smooth)
  assert 0.12 <= truth["arm_strength"] <= 0.6 and 6 <= truth["pitch_deg"] <= 40


def test_arm_counts_and_pitch_angles_follow_their_distributions():
  draws = [morphology.face_on_spiral(survey.galaxy_rng(9, i), 0.0, Selection())[1] for i in range(300)]
  arms = np.array([t["n_arms"] for t in draws])
  pitch = np.array([t["pitch_deg"] for t in draws])
  assert set(arms) <= set(morphology.ARM_COUNT_WEIGHTS)
  assert abs((arms == 2).mean() - morphology.ARM_COUNT_WEIGHTS[2]) < 0.1
  assert (arms == 3).mean() > 0.1
  assert 15 < np.median(pitch) < 28 and pitch.std() > 3


def test_dust_lane_lowers_the_edge_on_midplane_flux_most_in_g():
  comps, truth = morphology.edge_on_disk(survey.galaxy_rng(4, 0), 0.0, BRIGHT, dust_probability=1.0)
  assert truth["has_dust_lane"] and truth["dust_lane_tau"] > 0
  lane = [c for c in comps if c.kind == "absorption"]
  assert len(lane) == 3 and all((c.flux <= 0).all() for c in lane)
  dusty, clear = _draw(comps), _draw([c for c in comps if c.kind != "absorption"])
  n = dusty.shape[1]
  yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * SCALE
  u, v = galaxy_frame(xx, yy, 0.0, 0.0, 1.0, truth["pa_deg"])
  midplane = (np.abs(v) < 0.5) & (np.abs(u) > 1.0) & (np.abs(u) < 2.0 * truth["hlr_arcsec"])
  ratio = [dusty[b][midplane].sum() / clear[b][midplane].sum() for b in range(3)]
  assert ratio[0] < 0.9  # the lane takes light out of the midplane
  assert ratio[0] < ratio[1] < ratio[2]  # and reddens it
  assert (dusty >= -1e-6 * dusty.max()).all()  # never more absorbed than emitted


def test_bars_rings_and_clumps_are_recorded():
  sel = Selection()
  barred = [morphology.barred_spiral(survey.galaxy_rng(2, i), 0.0, sel)[1] for i in range(60)]
  assert all(t["has_bar"] and t["n_arms"] == 2 and t["bar_length_arcsec"] > 0 for t in barred)
  assert 0.1 < np.mean([t["has_ring"] for t in barred]) < 0.6
  assert all(t["n_clumps"] >= 8 for t in barred)


def test_mergers_have_two_tails_and_some_shells():
  draws = [morphology.merger(survey.galaxy_rng(6, i), 0.0, Selection()) for i in range(40)]
  for comps, truth in draws:
    assert truth["n_tails"] == 2
    assert sum(c.params.get("pattern") == "tail" for c in comps) == 2
    assert any(c.params.get("pattern") == "shells" for c in comps) == truth["has_shells"]
  assert 0 < np.mean([t["has_shells"] for _, t in draws]) < 1


def test_tails_put_light_far_from_the_pair():
  comps, truth = morphology.merger(survey.galaxy_rng(6, 1), 0.0, BRIGHT)
  pair = _draw(comps[:2], 152)[1]
  full = _draw(comps, 152)[1]
  n = full.shape[0]
  rr = np.hypot(*(np.mgrid[:n, :n] - (n - 1) / 2)) * SCALE
  far = rr > 2.5 * truth["hlr_arcsec"] + truth["merger_separation_arcsec"] / 2
  assert (full - pair)[far].sum() > 0.2 * (full - pair).sum()


def test_source_noise_raises_the_variance_of_bright_pixels():
  from lvm_jax.sim import observing
  rng = np.random.default_rng(0)
  sky = np.array([0.002, 0.003, 0.007])
  bright = np.full((3, 64, 64), 5.0)
  noise = observing.source_noise(rng, bright, sky, SCALE)
  sky_px = 10 ** (-0.4 * (observing.SKY_MAG_PER_ARCSEC2 - 22.5)) * SCALE**2
  np.testing.assert_allclose(noise.std(axis=(1, 2)), sky * np.sqrt(5.0 / sky_px), rtol=0.05)
  assert (noise.std(axis=(1, 2)) > sky).all()  # a 5 nanomaggy pixel is photon-noise dominated
  assert np.abs(observing.source_noise(rng, np.zeros((3, 8, 8)), sky, SCALE)).max() == 0.0


def test_bright_star_cores_saturate():
  from lvm_jax.sim import observing
  image = np.zeros((3, 16, 16), np.float32)
  image[:, 8, 8] = 1e4
  clipped, n = observing.saturate(image)
  assert n == 1 and clipped[1, 8, 8] == pytest.approx(observing.SATURATION_NMGY[1])


def test_morphometry_tells_a_de_vaucouleurs_from_an_exponential():
  from lvm_jax.sim import morphometry
  rng = np.random.default_rng(1)
  stamps = []
  for n in (4.0, 1.0):
    c = Component("sersic", np.full(3, 300.0), dict(n=n, hlr=3.0, q=0.8, pa=30.0, x=0.0, y=0.0))
    stamps.append(_draw([c], 128) + rng.normal(0, 0.01, (3, 128, 128)))
  m = morphometry.measure(np.stack(stamps), psf_fwhm=FWHM[1])
  assert (m["flag"] < 2).all()
  assert m["concentration"][0] > m["concentration"][1] + 0.5
  assert m["gini"][0] > m["gini"][1]
  assert m["sersic_n"][0] == pytest.approx(4.0, abs=0.6)  # the fit is convolved with the PSF
  assert m["sersic_n"][1] == pytest.approx(1.0, abs=0.3)
  assert m["r50"][1] == pytest.approx(3.0 * np.sqrt(0.8), rel=0.15)  # circularised half-light radius
