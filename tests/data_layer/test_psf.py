"""Moffat kernels: normalised, symmetric, and of the requested FWHM."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.data import psf


@pytest.mark.parametrize("fwhm,beta", [(2.0, 4.765), (3.3, 3.5), (5.0, 2.5), (8.0, 4.765),
                                       (6.5, 10.0)])
def test_measured_fwhm_matches_request(fwhm, beta):
  kernel = psf.moffat_kernel(fwhm, beta)
  assert kernel.shape[0] % 2 == 1 and kernel.shape[0] >= 5 * fwhm
  assert psf.measured_fwhm(kernel) == pytest.approx(fwhm, rel=0.04)
  # Oversampled 8x: the half-maximum crossing is then accurate to well under a percent.
  fine = psf.moffat_kernel(8 * fwhm, beta)
  assert psf.measured_fwhm(fine) / 8 == pytest.approx(fwhm, rel=0.005)


@pytest.mark.parametrize("fwhm,beta,size", [(2.0, 4.765, None), (4.0, 3.5, 11), (1.0, 2.0, 31)])
def test_kernel_normalised_and_symmetric(fwhm, beta, size):
  kernel = psf.moffat_kernel(fwhm, beta, size)
  assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
  np.testing.assert_allclose(kernel, kernel[::-1], atol=1e-15)
  np.testing.assert_allclose(kernel, kernel[:, ::-1], atol=1e-15)
  np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
  c = kernel.shape[0] // 2
  assert kernel.argmax() == c * kernel.shape[0] + c


def test_profile_follows_moffat_law():
  fwhm, beta = 4.0, 3.0
  kernel = psf.moffat_kernel(fwhm, beta, size=41)
  a = psf.moffat_alpha(fwhm, beta)
  c = 20
  r = np.arange(21)
  np.testing.assert_allclose(kernel[c, c:] / kernel[c, c], (1 + (r / a) ** 2) ** -beta, rtol=1e-12)


def test_default_size_and_bad_input():
  assert psf.default_kernel_size(2.0) == 11
  assert psf.default_kernel_size(3.0) == 15
  assert psf.default_kernel_size(2.1) == 11
  assert psf.default_kernel_size(0.1) == 3
  with pytest.raises(ValueError, match="fwhm"):
    psf.moffat_kernel(0.0, 3.0)
  with pytest.raises(ValueError, match="odd"):
    psf.moffat_kernel(2.0, 3.0, size=10)


def test_convolution_conserves_flux():
  image = np.zeros((41, 41, 2), np.float32)
  image[20, 20] = [1.0, 2.0]
  out = psf.convolve_bands(image, psf.moffat_kernel(3.0, 4.765))
  np.testing.assert_allclose(out.sum(axis=(0, 1)), [1.0, 2.0], rtol=1e-5)
  assert psf.measured_fwhm(out[..., 0]) == pytest.approx(3.0, rel=0.04)
