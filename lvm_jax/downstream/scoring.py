"""Scores of the downstream evaluation: test-set scores of trained variables per task, the
reference scores (degraded and masked inputs, Wiener, Richardson-Lucy with the true PSF, the
normalised-convolution fill) and the flux calibration of a restoration model.

Images are (N, H, W, 3) in network space (the pretraining's preprocessing, `prep`); aperture
fluxes are linear (inverse asinh) within `restoration.aperture_radius_px` network pixels.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax.data import degrade as degrade_lib
from lvm_jax.downstream import baselines
from lvm_jax.downstream import datasets
from lvm_jax.downstream import definitions
from lvm_jax.downstream import labels as labels_lib
from lvm_jax.downstream import metrics


def fill_sigmas(config) -> tuple[float, ...]:
  """inpainting.fill_sigmas_px: the normalised-convolution fill's Gaussians (px)."""
  return tuple(float(x) for x in config.inpainting.fill_sigmas_px)


def inpainting_masks(n: int, size: int, patch: int, fraction: float, seed: int) -> np.ndarray:
  rng = np.random.default_rng([seed, patch, int(round(fraction * 100))])
  return np.stack([degrade_lib.mask_patches(np.zeros((size, size)), rng, patch, fraction)[1]
                   for _ in range(n)])


def image_scores(pred, target, prep, radius, mask=None) -> dict[str, float]:
  out = metrics.image_metrics(pred, target, mask)
  if mask is None:
    err = metrics.aperture_flux_error(datasets.to_flux(pred, prep), datasets.to_flux(target, prep),
                                      radius)
    out["flux_err_median"] = float(np.nanmedian(err))
    out["flux_abs_err_median"] = float(np.nanmedian(np.abs(err)))
  return out


def evaluate_variables(predict, variables, test, config, prep, standardiser, tasks,
                       only: str | None = None) -> dict[str, Any]:
  """Test-set scores of every task in `tasks` (`make_tasks`), or of the task named `only`."""
  by_name = {t.name: t for t in tasks if only is None or t.name == only}
  out: dict[str, Any] = {}
  if "classification" in by_name:
    logits = predict(variables, test["image"], "classification")
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))
    out["classification"] = metrics.classification_metrics(test["label"], probs)
  radius = float(config.restoration.aperture_radius_px)
  if "restoration" in by_name:
    out.update(restoration_scores(predict, variables, test, config, prep, radius, "restoration",
                                   by_name["restoration"].input_key))
  if "inpainting" in by_name:
    out.update(_inpainting_scores(predict, variables, test, config, prep, radius,
                                  by_name["inpainting"]))
  if "parameters" in by_name:
    out.update(_parameter_scores(predict, variables, test, standardiser, "parameters"))
  return out


def restoration_scores(predict, variables, test, config, prep, radius, head,
                        input_key: str = "degraded", flux_scale: dict[str, float] | None = None
                        ) -> dict[str, Any]:
  """Restoration scores per degradation mode of `test` (`{input_key}_paper`, `_physical`: the
  modes it has); `flux_scale` (per mode) multiplies the restored images' flux first
  (`flux_calibration`)."""
  out: dict[str, Any] = {"restoration": {}}
  for mode in [m for m in ("paper", "physical") if f"{input_key}_{m}" in test]:
    pred = predict(variables, test[f"{input_key}_{mode}"], head)
    if flux_scale is not None:
      pred = datasets.scale_flux(pred, flux_scale[mode], prep)
    out["restoration"][mode] = image_scores(pred, test["image"], prep, radius)
    if mode == "paper":
      out["_gallery_restoration"] = pred[:int(config.report.gallery_rows)]
  return out


def _inpainting_scores(predict, variables, test, config, prep, radius, task) -> dict[str, Any]:
  out: dict[str, Any] = {"inpainting": {}}
  for p in config.inpainting.patch_sizes:
    for f in config.inpainting.fractions:
      mask = inpainting_masks(len(test["image"]), test["image"].shape[1], p, f, 0)
      pred = predict(variables, np.asarray(task.masked_input(test["image"], mask)), task.name)
      out["inpainting"][f"{p}px_{f:.1f}"] = image_scores(pred, test["image"], prep, radius, mask)
      if "_gallery_inpainting" not in out or abs(f - 0.5) < 1e-6:
        rows = int(config.report.gallery_rows)
        out["_gallery_inpainting"] = pred[:rows]
        out["_gallery_masked"] = np.where(mask[:rows, ..., None], 0.0,
                                          test["image"][:rows]).astype(np.float32)
  return out


def _parameter_scores(predict, variables, test, standardiser, head) -> dict[str, Any]:
  out: dict[str, Any] = {}
  par = predict(variables, test["image"], head)
  mean, sigma = standardiser.inverse(par["mean"], np.exp(par["log_sigma"]))
  truth = test["params_raw"]
  out["parameters"] = {name: metrics.regression_metrics(mean[:, j], truth[:, j], sigma[:, j])
                       for j, name in enumerate(labels_lib.PARAMETERS)}
  pa_pred = labels_lib.pa_from_targets(mean[:, 3], mean[:, 4])
  pa_true = labels_lib.pa_from_targets(truth[:, 3], truth[:, 4])
  dpa = (pa_pred - pa_true + 90.0) % 180.0 - 90.0
  out["parameters"]["pa_deg"] = metrics.regression_metrics(pa_true + dpa, pa_true)
  out["_predictions"] = {"parameters_mean": mean, "parameters_sigma": sigma}
  return out


def reference_scores(data, config, prep) -> dict[str, Any]:
  """Degraded input, Wiener and Richardson-Lucy (true PSF), the masked input and its
  normalised-convolution fill (`inpainting_filled`; inpainting.fill_sigmas_px).

  Also returns the tuned Richardson-Lucy restorations of the test set (`deconvolved`, per mode,
  network space), the input of PSF-aware restoration."""
  test, tune = data["test"], data["tune"]
  radius = float(config.restoration.aperture_radius_px)
  to_net = lambda flux: datasets.to_network(flux, prep)  # noqa: E731
  out: dict[str, Any] = {"restoration": {}, "inpainting": {}, "inpainting_filled": {},
                         "tuned": {}, "gallery": {}, "deconvolved": {}}
  for mode in ("paper", "physical"):
    out["restoration"].setdefault("Degraded input", {})[mode] = image_scores(
        test[f"degraded_{mode}"], test["image"], prep, radius)
    for method, grid, label in (("wiener", config.restoration.wiener_balance, "Wiener"),
                                ("richardson_lucy", config.restoration.rl_iterations,
                                 "Richardson-Lucy")):
      def score(restored, i, mode=mode):
        x = to_net(restored)[None]
        t = tune["image"][i][None]
        return float(metrics.psnr(x, t, metrics.data_range(t))[0])
      best = baselines.tune(method, list(grid), tune["degraded_flux"][mode],
                            tune["kernels"][mode], score)
      out["tuned"][f"{method}_{mode}"] = best
      flux = test["degraded_flux"][mode]
      restored = datasets.deconvolved(flux, test["kernels"][mode], [best] * len(flux), prep,
                                      method)
      out["restoration"].setdefault(label, {})[mode] = image_scores(
          restored, test["image"], prep, radius)
      if method == "richardson_lucy":
        out["gallery"][f"rl_{mode}"] = restored[:int(config.report.gallery_rows)]
        out["deconvolved"][mode] = restored
  for p in config.inpainting.patch_sizes:
    for f in config.inpainting.fractions:
      mask = inpainting_masks(len(test["image"]), test["image"].shape[1], p, f, 0)
      masked = np.where(mask[..., None], 0.0, test["image"])
      out["inpainting"][f"{p}px_{f:.1f}"] = image_scores(masked, test["image"], prep, radius,
                                                         mask)
      filled = np.asarray(definitions.fill_masked(test["image"], mask, fill_sigmas(config)))
      out["inpainting_filled"][f"{p}px_{f:.1f}"] = image_scores(filled, test["image"], prep,
                                                                radius, mask)
  out["noise_limited_psnr"] = float(np.mean(metrics.noise_limited_psnr(test["image"])))
  return out


def flux_calibration(predict, variables, head: str, source, indices, config, prep,
                     iterations: dict[str, int]) -> dict[str, float]:
  """Per degradation mode, the factor that brings the median aperture-flux ratio (restored /
  clean, all bands) of training galaxies to 1.

  The galaxies (`indices`, training records) are degraded afresh (seed data.degrade_seed + 1:
  new noise and PSFs, inputs the model never saw), restored by Richardson-Lucy with the true PSF
  (`iterations` per mode, as tuned) and then by the model. The test set is never used.
  """
  cal = datasets.build(source, indices, prep, int(config.data.degrade_seed) + 1, both_modes=True,
                       keep_flux=True)
  radius = float(config.restoration.aperture_radius_px)
  clean = datasets.to_flux(cal["image"], prep)
  scales = {}
  for mode in ("paper", "physical"):
    x = datasets.deconvolved(cal["degraded_flux"][mode], cal["kernels"][mode],
                             [iterations[mode]] * len(indices), prep)
    err = metrics.aperture_flux_error(datasets.to_flux(predict(variables, x, head), prep), clean,
                                      radius)
    scales[mode] = float(1.0 / (1.0 + np.nanmedian(err)))
  return scales
