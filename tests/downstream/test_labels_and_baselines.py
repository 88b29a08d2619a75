"""PA labels under flips and rotations (checked on rendered Sersic images); classical baselines."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.data import degrade, psf
from lvm_jax.sim.lensing import sersic_surface_brightness
from lvm_jax.downstream import baselines, labels, metrics


def _render(pa_deg, size=33, q=0.4):
  c = np.arange(size) - size // 2
  x, y = np.meshgrid(c, c)  # rows run north (+y), columns west (+x): the sim's frame
  return sersic_surface_brightness(x, y, x0=0.0, y0=0.0, n=1.0, hlr=5.0, q=q, pa_deg=pa_deg)


@pytest.mark.parametrize("k,flip", [(1, False), (2, False), (3, False), (0, True), (1, True),
                                    (3, True)])
def test_dihedral_transforms_the_pa_label_with_the_image(k, flip):
  pa = 30.0
  image = _render(pa)[None, :, :, None].repeat(3, axis=-1)
  targets = labels.parameter_targets({"truth/sersic_n": np.array([1.0]),
                                      "truth/hlr_arcsec": np.array([5.0]),
                                      "truth/axis_ratio": np.array([0.4]),
                                      "truth/pa_deg": np.array([pa]),
                                      "truth/mag_r": np.array([20.0])})
  out = labels.dihedral({"image": image, "params": targets}, k, flip)
  new_pa = labels.pa_from_targets(out["params"][:, 3], out["params"][:, 4])[0]
  assert new_pa == pytest.approx(labels.transform_pa(pa, k, flip), abs=1e-4)
  # The transformed image is the galaxy rendered at the transformed PA (and not at the old one).
  np.testing.assert_allclose(out["image"][0, :, :, 0], _render(new_pa), atol=1e-6)
  if abs((new_pa - pa + 90) % 180 - 90) > 1:
    assert not np.allclose(out["image"][0, :, :, 0], _render(pa), atol=1e-3)
  np.testing.assert_array_equal(out["params"][:, [0, 1, 2, 5]], targets[:, [0, 1, 2, 5]])


def test_dihedral_moves_every_image_like_array_together():
  """Inputs (degraded, deconvolved), targets and masks must stay aligned under augmentation."""
  rng = np.random.default_rng(2)
  image = rng.normal(size=(2, 8, 8, 3))
  batch = {"image": image, "degraded": image + 1.0, "deconvolved": image - 1.0,
           "mask": image[..., 0] > 0, "label": np.array([1, 2]), "valid": np.ones(2, bool)}
  out = labels.dihedral(batch, 1, True)
  assert not np.allclose(out["image"], image)
  np.testing.assert_allclose(out["degraded"], out["image"] + 1.0)
  np.testing.assert_allclose(out["deconvolved"], out["image"] - 1.0)
  np.testing.assert_array_equal(out["mask"], out["image"][..., 0] > 0)
  np.testing.assert_array_equal(out["label"], batch["label"])


def test_standardiser_round_trip_keeps_the_orientation_pair():
  rng = np.random.default_rng(0)
  y = rng.normal(3.0, 2.0, size=(50, 6)).astype(np.float32)
  s = labels.Standardiser(y)
  z = s.forward(y)
  np.testing.assert_allclose(z[:, [0, 1, 2, 5]].mean(0), 0, atol=1e-5)
  np.testing.assert_array_equal(z[:, 3:5], y[:, 3:5])
  np.testing.assert_allclose(s.inverse(z), y, rtol=1e-5)


@pytest.mark.parametrize("method,strength", [("wiener", 0.01), ("richardson_lucy", 30)])
def test_deconvolution_with_the_true_psf_sharpens(method, strength):
  rng = np.random.default_rng(0)
  clean = np.stack([_render(40.0, 48, 0.5) * a for a in (0.5, 1.0, 1.5)], -1).astype(np.float32)
  clean += 0.02 * rng.standard_normal(clean.shape).astype(np.float32)
  kernel = psf.moffat_kernel(4.0, degrade.MOFFAT_BETA)
  blurred = psf.convolve_bands(clean, kernel) + 0.002 * rng.standard_normal(clean.shape)
  restored = baselines.deconvolve(blurred, kernel, method, strength)
  r = metrics.data_range(clean[None])
  before = metrics.psnr(blurred[None], clean[None], r)[0]
  after = metrics.psnr(restored[None], clean[None], r)[0]
  assert after > before + 1.0
  with pytest.raises(ValueError, match="method"):
    baselines.deconvolve(blurred, kernel, "magic", 1)


def test_deconvolved_inputs_are_richardson_lucy_in_network_space():
  """PSF-aware restoration's input: each crop deconvolved with its own kernels and iterations,
  then preprocessed like the clean images."""
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.downstream import datasets
  rng = np.random.default_rng(1)
  clean = np.stack([_render(40.0, 48, 0.5) * a for a in (0.5, 1.0, 1.5)], -1)
  clean = (0.5 * clean / clean.max()).astype(np.float32)  # a 0.5 nmgy peak
  kernels = [psf.moffat_kernel(f, degrade.MOFFAT_BETA) for f in (3.0, 5.0)]
  crops = [psf.convolve_bands(clean, k) + 2e-4 * rng.standard_normal(clean.shape) for k in kernels]
  prep = Preprocessing(mode="fixed", crop_size=48, out_size=32, normalisation="asinh")
  out = datasets.deconvolved(crops, [[k] * 3 for k in kernels], [10, 20], prep)
  assert out.shape == (2, 32, 32, 3) and out.dtype == np.float32
  for i, (k, n) in enumerate(zip(kernels, (10, 20))):
    expected = datasets.to_network(baselines.deconvolve(crops[i], k, "richardson_lucy", n), prep)
    np.testing.assert_allclose(out[i], expected, rtol=1e-6)
  # sharper than the blurred input, judged against the clean image in network space
  target = datasets.to_network(clean, prep)
  for i in range(2):
    err_rl = np.mean((out[i] - target) ** 2)
    assert err_rl < np.mean((datasets.to_network(crops[i].astype(np.float32), prep) - target) ** 2)
