"""Evaluation metrics of the downstream tasks, in NumPy (float64).

Classification: accuracy, macro precision / recall / F1 (scikit-learn's `average="macro"`,
zero_division=0), confusion matrix (rows truth, columns prediction); for binary tasks AUC, AUPR,
purity and completeness from `lvm_jax.hitl.metrics` (not a second copy).
Images (B, H, W, C) NHWC: MSE, PSNR (10 log10(data_range^2 / MSE), dB), SSIM with scikit-image's
defaults (7 x 7 uniform window, K1 = 0.01, K2 = 0.03, sample covariances, the mean over the
valid region (the border of 3 pixels cropped), channels averaged), and aperture flux
conservation (fractional flux error in a circular aperture, linear flux units).
Regression: bias, scatter (std), outlier fraction (|residual| > k scatter scale), 68% coverage
of predicted 1-sigma intervals, and the photometric-redshift statistics sigma_NMAD and the
|dz| / (1 + z) > 0.15 outlier fraction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lvm_jax.hitl import metrics as ranking

SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
PHOTOZ_OUTLIER = 0.15


# --- Classification ------------------------------------------------------------------------------

def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
  """(K, K) int64 counts, rows the true class, columns the predicted one."""
  truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
  if truth.shape != pred.shape:
    raise ValueError(f"truth {truth.shape} and predictions {pred.shape} differ in shape")
  if truth.size and (truth.min() < 0 or truth.max() >= num_classes or pred.min() < 0
                     or pred.max() >= num_classes):
    raise ValueError(f"class ids must lie in [0, {num_classes})")
  return np.bincount(truth * num_classes + pred, minlength=num_classes**2).reshape(
      num_classes, num_classes)


def classification_metrics(truth: np.ndarray, probs: np.ndarray,
                           classes: np.ndarray | None = None) -> dict[str, Any]:
  """Accuracy, macro precision / recall / F1 and the confusion matrix; AUC etc. when binary.

  Args:
    truth: (N,) int class ids in [0, K).
    probs: (N, K) class probabilities (or any scores; the argmax is the prediction).
    classes: the class ids the macro average runs over (default: those present in truth or
      predictions, as scikit-learn does).
  Binary tasks (K = 2) add auc, aupr, purity and completeness of class 1 at p > 0.5.
  """
  probs = np.asarray(probs, np.float64)
  k = probs.shape[1]
  truth = np.asarray(truth, np.int64)
  pred = probs.argmax(axis=1)
  cm = confusion_matrix(truth, pred, k)
  if classes is None:
    classes = np.flatnonzero(cm.sum(0) + cm.sum(1))
  tp = np.diag(cm)[classes].astype(np.float64)
  predicted, actual = cm.sum(0)[classes], cm.sum(1)[classes]
  precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
  recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
  denom = precision + recall
  f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
  out = {"accuracy": float(np.mean(pred == truth)), "precision": float(precision.mean()),
         "recall": float(recall.mean()), "f1": float(f1.mean()), "confusion": cm.tolist(),
         "count": int(len(truth))}
  if k == 2:
    positive = truth == 1
    out["auc"] = ranking.roc_auc(positive, probs[:, 1])
    out["aupr"] = ranking.average_precision(positive, probs[:, 1])
    out["purity"], out["completeness"] = ranking.purity_completeness(positive, probs[:, 1], 0.5)
  return out


# --- Images --------------------------------------------------------------------------------------

def _nhwc(x) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 4:
    raise ValueError(f"expected NHWC images (B, H, W, C), got shape {x.shape}")
  return x


def mse(pred, target, mask=None) -> np.ndarray:
  """(B,) mean squared error per image; with mask (B, H, W) bool only over the masked pixels."""
  err = np.square(_nhwc(pred) - _nhwc(target))
  if mask is None:
    return err.reshape(len(err), -1).mean(axis=1)
  w = np.broadcast_to(np.asarray(mask, bool)[..., None], err.shape)
  n = w.reshape(len(w), -1).sum(axis=1)
  if (n == 0).any():
    raise ValueError("an image has no masked pixels to average over")
  return (err * w).reshape(len(err), -1).sum(axis=1) / n


def psnr(pred, target, data_range, mask=None) -> np.ndarray:
  """(B,) 10 log10(data_range^2 / MSE) in dB; data_range scalar or (B,)."""
  r = np.broadcast_to(np.asarray(data_range, np.float64), (len(np.asarray(pred)),))
  return 10.0 * np.log10(r**2 / np.maximum(mse(pred, target, mask), 1e-30))


def data_range(target) -> np.ndarray:
  """(B,) max - min of each target image over all pixels and bands: the PSNR / SSIM range."""
  t = _nhwc(target).reshape(len(target), -1)
  return t.max(axis=1) - t.min(axis=1)


def _box_mean(x: np.ndarray, win: int) -> np.ndarray:
  """'valid' mean over win x win windows of (B, H, W, C) -> (B, H-win+1, W-win+1, C)."""
  c = np.pad(np.cumsum(np.cumsum(x, axis=1), axis=2), ((0, 0), (1, 0), (1, 0), (0, 0)))
  s = c[:, win:, win:] - c[:, :-win, win:] - c[:, win:, :-win] + c[:, :-win, :-win]
  return s / (win * win)


def ssim(pred, target, data_range) -> np.ndarray:
  """(B,) SSIM as `skimage.metrics.structural_similarity(t, p, data_range=r, channel_axis=-1)`.

  Uniform 7 x 7 window, K1 = 0.01, K2 = 0.03, sample covariance; skimage's 'valid' crop of 3
  pixels is exactly the region where a 7 x 7 window fits, which is what is averaged here.
  Computed in float64 with box sums (cumulative sums), so any image size costs the same.
  """
  pred, target = _nhwc(pred), _nhwc(target)
  if pred.shape != target.shape:
    raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
  if min(pred.shape[1:3]) < SSIM_WINDOW:
    raise ValueError(f"images smaller than the {SSIM_WINDOW} px SSIM window")
  win = SSIM_WINDOW
  cov_norm = win * win / (win * win - 1.0)  # sample covariance, as skimage
  ux, uy = _box_mean(pred, win), _box_mean(target, win)
  vx = cov_norm * (_box_mean(pred * pred, win) - ux * ux)
  vy = cov_norm * (_box_mean(target * target, win) - uy * uy)
  vxy = cov_norm * (_box_mean(pred * target, win) - ux * uy)
  r = np.broadcast_to(np.asarray(data_range, np.float64), (len(pred),))[:, None, None, None]
  c1, c2 = (SSIM_K1 * r) ** 2, (SSIM_K2 * r) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
  return s.mean(axis=(1, 2, 3))


def aperture_mask(h: int, w: int, radius_px: float) -> np.ndarray:
  """(h, w) bool, True inside the circle of `radius_px` about the image centre."""
  yy, xx = np.mgrid[:h, :w]
  return (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= radius_px**2


def border_mask(h: int, w: int, border: int) -> np.ndarray:
  """(h, w) bool, True on the outer `border` pixels (where the sky is measured)."""
  ring = np.ones((h, w), bool)
  ring[border:h - border, border:w - border] = False
  return ring


def sky_noise(images, border: int = 6) -> np.ndarray:
  """(B, C) robust sky noise per image and band: 1.4826 x the MAD of the outer `border` px ring."""
  x = _nhwc(images).astype(np.float64)
  sky = x[:, border_mask(*x.shape[1:3], border), :]
  return 1.4826 * np.median(np.abs(sky - np.median(sky, axis=1, keepdims=True)), axis=1)


def noise_limited_psnr(target, border: int = 6) -> np.ndarray:
  """(B,) the PSNR (own data range) of a prediction whose error is exactly the sky noise.

  A predictor that knew the noiseless image would score this against the noisy target: the
  ceiling of any reconstruction of pixels it cannot see (masked patches), in dB.
  """
  var = np.mean(np.square(sky_noise(target, border)), axis=1)
  return 10.0 * np.log10(data_range(target) ** 2 / np.maximum(var, 1e-30))


def aperture_flux(images, radius_px: float) -> np.ndarray:
  """(B, C) summed flux inside a circle of `radius_px` about the image centre (linear units)."""
  x = _nhwc(images)
  return x[:, aperture_mask(*x.shape[1:3], radius_px), :].sum(axis=1)


def aperture_flux_error(pred, target, radius_px: float) -> np.ndarray:
  """(B, C) fractional aperture flux error pred / target - 1 (linear fluxes, e.g. nanomaggies)."""
  fp, ft = aperture_flux(pred, radius_px), aperture_flux(target, radius_px)
  return fp / np.where(np.abs(ft) > 0, ft, np.nan) - 1.0


def image_metrics(pred, target, mask=None, data_range_=None) -> dict[str, float]:
  """Means over images of MSE, PSNR (dB) and SSIM (whole image), + masked MSE/PSNR with a mask."""
  r = data_range(target) if data_range_ is None else data_range_
  out = {"mse": float(mse(pred, target).mean()), "psnr": float(psnr(pred, target, r).mean()),
         "ssim": float(ssim(pred, target, r).mean())}
  if mask is not None:
    out["mse_masked"] = float(mse(pred, target, mask).mean())
    out["psnr_masked"] = float(psnr(pred, target, r, mask).mean())
  return out


# --- Regression ----------------------------------------------------------------------------------

def sigma_nmad(x) -> float:
  """1.4826 median |x - median(x)|."""
  x = np.asarray(x, np.float64)
  return float(1.4826 * np.median(np.abs(x - np.median(x))))


def regression_metrics(pred, truth, sigma=None, outlier_k: float = 3.0) -> dict[str, float]:
  """Bias (mean residual), scatter (std), sigma_NMAD, outlier fraction, 68% coverage.

  An outlier has |pred - truth| > outlier_k x sigma_NMAD of the residuals. With predicted
  1-sigma uncertainties `sigma` (N,), coverage68 is the fraction with |pred - truth| <= sigma
  (0.683 for calibrated Gaussian errors).
  """
  pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
  if pred.shape != truth.shape:
    raise ValueError(f"predictions {pred.shape} and truth {truth.shape} differ in shape")
  res = pred - truth
  nmad = sigma_nmad(res)
  out = {"bias": float(res.mean()), "scatter": float(res.std()), "sigma_nmad": nmad,
         "outlier_fraction": float(np.mean(np.abs(res) > outlier_k * max(nmad, 1e-30))),
         "count": int(len(res))}
  if sigma is not None:
    out["coverage68"] = float(np.mean(np.abs(res) <= np.asarray(sigma, np.float64)))
  return out


def photoz_metrics(z_pred, z_spec) -> dict[str, float]:
  """dz = (z_pred - z_spec) / (1 + z_spec): bias (mean), sigma_NMAD, outliers |dz| > 0.15.

  Rows where z_spec is NaN (no spectrum) are left out; `count` says how many remain.
  """
  z_pred, z_spec = np.asarray(z_pred, np.float64), np.asarray(z_spec, np.float64)
  keep = np.isfinite(z_spec)
  dz = (z_pred[keep] - z_spec[keep]) / (1.0 + z_spec[keep])
  if dz.size == 0:
    return {"count": 0}
  return {"bias": float(dz.mean()), "sigma_nmad": sigma_nmad(dz),
          "outlier_fraction": float(np.mean(np.abs(dz) > PHOTOZ_OUTLIER)), "count": int(dz.size)}
