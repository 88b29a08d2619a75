"""Degradations: parameter ranges, noise levels in the stated units, masks of the requested fraction."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.data import degrade, psf


def test_paper_mode_ranges_and_noise_units(make_galaxy):
  image = make_galaxy(96)
  lo, hi = float(image.min()), float(image.max())
  rng = np.random.default_rng(0)
  for _ in range(5):
    out, p = degrade.degrade(image, rng, "paper")
    assert out.shape == image.shape and out.dtype == np.float32
    assert 2.0 <= p["fwhm_px"] <= 8.0 and 1.0 <= p["noise_sigma_display"] <= 15.0
    assert p["beta"] == degrade.MOFFAT_BETA
    assert p["noise_sigma"] == pytest.approx(p["noise_sigma_display"] * (hi - lo) / 255)
    # The residual against the blurred image is the added noise, on the 0-255 display scale.
    blurred = psf.convolve_bands(image, psf.moffat_kernel(p["fwhm_px"], p["beta"]))
    residual_display = (out - blurred) * 255 / (hi - lo)
    assert residual_display.std() == pytest.approx(p["noise_sigma_display"], rel=0.05)


def test_paper_mode_reproducible_and_bad_input(make_galaxy):
  image = make_galaxy(32)
  a, pa = degrade.degrade(image, np.random.default_rng(7))
  b, pb = degrade.degrade(image, np.random.default_rng(7))
  np.testing.assert_array_equal(a, b)
  assert pa == pb
  with pytest.raises(ValueError, match="constant"):
    degrade.degrade(np.ones((8, 8, 3)), np.random.default_rng(0))
  with pytest.raises(ValueError, match="NaN"):
    degrade.degrade(np.full((8, 8, 3), np.nan), np.random.default_rng(0))
  with pytest.raises(ValueError, match="mode"):
    degrade.degrade(image, np.random.default_rng(0), mode="jpeg")
  with pytest.raises(TypeError, match="Generator"):
    degrade.degrade(image, 0)


def test_physical_mode(make_galaxy):
  rng = np.random.default_rng(1)
  image = rng.normal(0.0, 0.01, size=(128, 128, 3)).astype(np.float32)  # pure sky
  out, p = degrade.degrade(image, rng, "physical", current_fwhm_arcsec=[1.3, 1.2, 1.1],
                           target_fwhm_arcsec=[1.3, 2.0, 2.5], noise_multiple=2.0)
  assert p["kernel_fwhm_px"][0] == 0.0
  assert p["kernel_fwhm_px"][1] == pytest.approx(np.sqrt(2.0**2 - 1.2**2) / 0.262)
  np.testing.assert_allclose(p["sky_sigma"], 0.01, rtol=0.05)
  # Band g is not blurred: its residual is exactly the added noise of 2 x sky sigma.
  assert (out[..., 0] - image[..., 0]).std() == pytest.approx(2 * p["sky_sigma"][0], rel=0.05)
  # Blurring smooths the original noise, so the blurred bands end near (not above) 2 x sky.
  assert out[..., 2].std() < np.hypot(2, 1) * 0.01

  galaxy = make_galaxy(64)
  out, p = degrade.degrade(galaxy, rng, "physical", current_fwhm_arcsec=1.0,
                           target_fwhm_arcsec=2.0, noise_multiple=0.0)
  assert out.max() < galaxy.max() and out.sum() == pytest.approx(galaxy.sum(), rel=1e-3)
  with pytest.raises(ValueError, match="sharper"):
    degrade.degrade(galaxy, rng, "physical", current_fwhm_arcsec=1.5, target_fwhm_arcsec=1.0)
  with pytest.raises(ValueError, match="needs"):
    degrade.degrade(galaxy, rng, "physical", target_fwhm_arcsec=1.0)
  with pytest.raises(ValueError, match="3 values"):
    degrade.degrade(galaxy, rng, "physical", current_fwhm_arcsec=[1.0, 1.0],
                    target_fwhm_arcsec=2.0)


@pytest.mark.parametrize("patch_size", [4, 8, 16])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.7])
def test_mask_fraction(patch_size, fraction):
  image = np.ones((128, 128, 3), np.float32)
  masked, mask = degrade.mask_patches(image, np.random.default_rng(0), patch_size, fraction)
  assert mask.shape == (128, 128) and mask.dtype == bool
  assert abs(mask.mean() - fraction) <= 0.5 / (128 // patch_size) ** 2 + 1e-9
  assert (masked[mask] == 0).all() and (masked[~mask] == 1).all()
  cells = mask.reshape(128 // patch_size, patch_size, 128 // patch_size, patch_size)
  assert (cells.all(axis=(1, 3)) == cells.any(axis=(1, 3))).all()  # whole patches only
  assert (image == 1).all()  # input untouched


def test_mask_partial_grid_and_bad_input():
  masked, mask = degrade.mask_patches(np.ones((152, 152, 3)), np.random.default_rng(0), 16, 0.5)
  assert mask.shape == (152, 152) and abs(mask.mean() - 0.5) < 0.1
  with pytest.raises(ValueError, match="patch_size"):
    degrade.mask_patches(np.ones((8, 8, 3)), np.random.default_rng(0), 5, 0.5)
  with pytest.raises(ValueError, match="fraction"):
    degrade.mask_patches(np.ones((8, 8, 3)), np.random.default_rng(0), 4, 0.8)
