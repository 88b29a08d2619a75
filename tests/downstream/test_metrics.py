"""Downstream metrics against scikit-learn / scikit-image on random data."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import metrics as skm
from sklearn import metrics as sk

from lvm_jax.downstream import metrics


@pytest.mark.parametrize("k", [2, 5])
def test_classification_matches_sklearn(k):
  rng = np.random.default_rng(k)
  truth = rng.integers(0, k, 300)
  probs = rng.dirichlet(np.ones(k), 300)
  probs[np.arange(150), truth[:150]] += 0.5  # some skill
  pred = probs.argmax(1)
  m = metrics.classification_metrics(truth, probs)
  assert m["accuracy"] == pytest.approx(sk.accuracy_score(truth, pred))
  for name, fn in (("precision", sk.precision_score), ("recall", sk.recall_score),
                   ("f1", sk.f1_score)):
    assert m[name] == pytest.approx(fn(truth, pred, average="macro", zero_division=0)), name
  np.testing.assert_array_equal(m["confusion"], sk.confusion_matrix(truth, pred, labels=range(k)))
  if k == 2:
    assert m["auc"] == pytest.approx(sk.roc_auc_score(truth, probs[:, 1]))
    assert m["aupr"] == pytest.approx(sk.average_precision_score(truth, probs[:, 1]))
    sel = probs[:, 1] > 0.5
    assert m["purity"] == pytest.approx(sk.precision_score(truth, sel))
    assert m["completeness"] == pytest.approx(sk.recall_score(truth, sel))


def test_macro_average_with_a_never_predicted_class():
  truth = np.array([0, 0, 1, 2, 2])
  probs = np.eye(3)[[0, 0, 0, 2, 2]]
  m = metrics.classification_metrics(truth, probs)
  assert m["precision"] == pytest.approx(sk.precision_score(truth, probs.argmax(1),
                                                            average="macro", zero_division=0))
  with pytest.raises(ValueError, match="class ids"):
    metrics.confusion_matrix(np.array([3]), np.array([0]), 3)


def test_image_metrics_match_skimage():
  rng = np.random.default_rng(0)
  target = rng.normal(size=(3, 32, 40, 3)).cumsum(axis=1)
  pred = target + 0.3 * rng.normal(size=target.shape)
  r = metrics.data_range(target)
  s = metrics.ssim(pred, target, r)
  p = metrics.psnr(pred, target, r)
  for i in range(3):
    assert s[i] == pytest.approx(skm.structural_similarity(
        target[i], pred[i], data_range=r[i], channel_axis=-1), rel=1e-9)
    assert p[i] == pytest.approx(skm.peak_signal_noise_ratio(target[i], pred[i],
                                                             data_range=r[i]), rel=1e-9)
    assert metrics.mse(pred, target)[i] == pytest.approx(skm.mean_squared_error(target[i],
                                                                                pred[i]))
  assert metrics.ssim(target, target, r) == pytest.approx(1.0)


def test_masked_mse_and_aperture_flux():
  rng = np.random.default_rng(1)
  target = rng.uniform(1, 2, size=(2, 16, 16, 3))
  pred = target.copy()
  mask = np.zeros((2, 16, 16), bool)
  mask[:, :4, :4] = True
  pred[mask] += 1.0
  np.testing.assert_allclose(metrics.mse(pred, target, mask), 1.0)
  assert metrics.mse(pred, target).mean() == pytest.approx(16 / 256)
  # A 2% brighter copy has +2% aperture flux in every band; a shift far outside keeps it.
  np.testing.assert_allclose(metrics.aperture_flux_error(1.02 * target, target, 5.0), 0.02)
  flux = metrics.aperture_flux(np.ones((1, 11, 11, 1)), 2.0)
  assert flux[0, 0] == 13  # lattice points with x^2 + y^2 <= 4


def test_regression_and_photoz_metrics():
  rng = np.random.default_rng(2)
  truth = rng.normal(size=20000)
  sigma = rng.uniform(0.5, 1.5, size=truth.shape)
  pred = truth + 0.1 + sigma * rng.normal(size=truth.shape)
  m = metrics.regression_metrics(pred, truth, sigma)
  assert m["bias"] == pytest.approx(0.1, abs=0.03)
  assert m["scatter"] == pytest.approx(np.std(pred - truth))
  assert m["coverage68"] == pytest.approx(0.6827, abs=0.015)
  assert 0 < m["outlier_fraction"] < 0.05
  z = rng.uniform(0.05, 1.0, 5000)
  dz = 0.02 * rng.normal(size=z.shape)
  dz[:250] = 0.5  # 5% catastrophic
  zp = z + dz * (1 + z)
  spec = z.copy()
  spec[-100:] = np.nan
  pz = metrics.photoz_metrics(zp, spec)
  assert pz["count"] == 4900
  assert pz["outlier_fraction"] == pytest.approx(250 / 4900)
  assert pz["sigma_nmad"] == pytest.approx(0.02, rel=0.1)


def test_noise_limited_psnr_is_the_psnr_of_the_noiseless_image():
  rng = np.random.default_rng(11)
  yy, xx = np.mgrid[:48, :48] - 23.5
  clean = np.repeat(np.exp(-(yy**2 + xx**2) / 30.0)[None, ..., None], 3, -1) * 3.0
  clean = np.repeat(clean, 8, axis=0)
  noisy = clean + rng.normal(0.0, 0.1, clean.shape)
  want = metrics.psnr(clean, noisy, metrics.data_range(noisy))
  got = metrics.noise_limited_psnr(noisy)
  # the ring's ~1,000 pixels per band estimate sigma to a few per cent per image
  np.testing.assert_allclose(got, want, atol=0.7)
  assert abs(np.mean(got) - np.mean(want)) < 0.2
  np.testing.assert_allclose(metrics.sky_noise(noisy), 0.1, rtol=0.15)
