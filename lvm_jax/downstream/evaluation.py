"""`lvm-jax evaluate`: the paper's downstream evaluation on a pretrained LVM (Tables 1-4, Fig. 5).

Steps (all seeded; see the `downstream` config):
1. The pretrained checkpoint gives the model config, preprocessing and the pretraining split;
   `n_train` galaxies of its training part and `n_test` of its held-out part are loaded
   (`lvm_jax.downstream.datasets`); classes with fewer than `min_class_count` training galaxies are
   left out of every task.
2. Strategies, each training the four heads (classification, restoration, inpainting,
   parameters) for the same steps and batch: `Pre_train` (LVM encoder frozen, only the heads
   learn), `Multi_uniform` (encoder fine-tuned, equal shares), `Multi_active` (fine-tuned,
   shares from held-out losses, `lvm_jax.downstream.multitask`), `Fine_tuned` (encoder fine-tuned on
   one task at a time, `steps.fine_tuned` steps each, or `steps.fine_tuned_by_task[task]` where
   that is > 0; the row holds each task's own run; 0 steps leaves it out), and ResNet18 /
   ResNet50 from scratch with the same heads (equal shares).
3. Classical restoration baselines (Wiener, Richardson-Lucy with the true PSF, tuned on
   training galaxies) and the degraded / masked input itself; with `restoration.psf_aware`,
   PSF-aware restoration: the LVM fine-tuned to refine the Richardson-Lucy restoration
   (`psf_aware_restoration`, the report's "Fine_tuned on Richardson-Lucy" row), and the same
   model with its flux calibrated per degradation mode on training galaxies degraded afresh
   (`flux_calibration`, restoration.flux_calibration_rows; "... + flux calibration").
   Restoration and inpainting use the pretrained LVM decoder as their head with
   `tasks.image_head` "lvm" (`lvm_jax.downstream.heads.LvmDecoderHead`).
4. The few-shot curve: classification accuracy against labelled galaxies per class, LVM (frozen)
   + head against ResNet18 / ResNet50 + the same head, over several seeds.
`evaluate` returns the results; `lvm_jax.downstream.report.write` writes WORKDIR/results.json,
report.md and the PNGs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lvm_jax import checkpoint
from lvm_jax import models
from lvm_jax import provenance
from lvm_jax.data import degrade as degrade_lib
from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.downstream import baselines
from lvm_jax.downstream import datasets
from lvm_jax.downstream import definitions
from lvm_jax.downstream import labels as labels_lib
from lvm_jax.downstream import metrics
from lvm_jax.downstream import multitask
from lvm_jax.downstream import network
from lvm_jax.downstream import training
from lvm_jax.downstream.definitions import (CALIBRATED_LABEL, FEW_SHOT_LVM_LABELS,
                                             PSF_AWARE_LABEL)

log = logging.getLogger(__name__)

STRATEGIES = ("Pre_train", "Multi_uniform", "Multi_active")


def resolve_pretrained(config) -> pathlib.Path:
  candidates = [config.pretrained] if config.pretrained else list(config.pretrained_candidates)
  for c in candidates:
    if c and checkpoint.latest_step(pathlib.Path(c) / "checkpoints") is not None:
      return pathlib.Path(c)
  raise FileNotFoundError(f"no pretrained checkpoint in {candidates} (set --config.pretrained "
                          "to a `lvm-jax train` workdir)")


def load_pretrained(workdir: pathlib.Path) -> dict[str, Any]:
  """params, model config (ConfigDict), preprocessing, split (val_size, split_seed), step."""
  ckpt = checkpoint.restore(workdir / "checkpoints")
  train_cfg = ckpt["config"].get("train", {})
  data = train_cfg.get("data", {})
  return {"params": ckpt["params"], "step": int(ckpt["step"]),
          "model": ml_collections.ConfigDict(ckpt["config"]["model"]),
          "preprocessing": Preprocessing.from_dict(ckpt["meta"]["preprocessing"]),
          "val_size": int(data.get("val_size", 500)),
          "split_seed": int(data.get("split_seed", 2024)), "path": str(workdir)}


def _select(data: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
  return {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in data.items()}


def fit_split(train: dict[str, Any], config) -> tuple[dict[str, Any], dict[str, Any]]:
  """(fit, held-out) rows of the training set: the last `active.val_rows` galaxies are held out
  (Multi_active's shares are measured on them); every strategy trains on the same fit rows."""
  n = len(train["image"])
  cut = n - int(config.active.val_rows)
  return _select(train, np.arange(cut)), _select(train, np.arange(cut, n))


def load_data(config, pre) -> dict[str, Any]:
  source = datasets.open_survey(config.data.files)
  pool, test_idx = datasets.split_indices(len(source), pre["val_size"], pre["split_seed"])
  rng = np.random.default_rng(int(config.seed))
  train_idx = np.sort(rng.permutation(pool)[:int(config.data.n_train)])
  test_idx = np.sort(rng.permutation(test_idx)[:int(config.data.n_test)])
  prep = pre["preprocessing"]
  seed = int(config.data.degrade_seed)
  psf_aware = bool(config.restoration.get("psf_aware", False))
  train = datasets.build(source, train_idx, prep, seed, keep_flux=psf_aware)
  if psf_aware:  # per-row arrays, so that the class selection below keeps them aligned
    train.pop("flux")
    train["degraded_flux"] = np.stack(train["degraded_flux"]["mixed"])
    kernels = train.pop("kernels")["mixed"]
    train["kernels"] = np.empty(len(kernels), object)
    train["kernels"][:] = [tuple(k) for k in kernels]
  test = datasets.build(source, test_idx, prep, seed, both_modes=True, keep_flux=True)
  tune = datasets.build(source, train_idx[:int(config.restoration.tune_rows)], prep, seed,
                        both_modes=True, keep_flux=True)
  counts = np.bincount(train["label"])
  classes = [int(c) for c in np.flatnonzero(counts >= int(config.data.min_class_count))]
  remap = np.full(max(counts.size, int(test["label"].max()) + 1), -1)
  remap[classes] = np.arange(len(classes))
  train, test = (_select(d, np.flatnonzero(remap[d["label"]] >= 0)) for d in (train, test))
  for d in (train, test):
    d["label"] = remap[d["label"]]
  standardiser = labels_lib.Standardiser(train["params"])
  train["params_raw"], train["params"] = train["params"], standardiser.forward(train["params"])
  test["params_raw"] = test["params"]
  test["params"] = standardiser.forward(test["params"])
  return {"train": train, "test": test, "tune": tune, "classes": classes,
          "class_counts_train": counts.tolist(), "standardiser": standardiser, "source": source}


def make_tasks(config, num_classes: int, image_size: int, mutable=(), asinh: bool = True,
               lvm_model=None) -> tuple[Any, ...]:
  """The four tasks. `lvm_model` (the LVM's model config, for an LVM backbone) with
  `tasks.image_head` "lvm" gives restoration and inpainting the pretrained LVM decoder as head;
  otherwise (and for ResNets) they get the convolutional `ImageDecoder`."""
  t, i = config.tasks, config.inpainting
  image_head = str(t.get("image_head", "conv"))
  if image_head not in ("conv", "lvm"):
    raise ValueError(f"unknown tasks.image_head {image_head!r}; known: conv, lvm")
  decoder = models.build(lvm_model) if lvm_model is not None and image_head == "lvm" else None
  residual = bool(t.get("lvm_residual", False))
  return (definitions.ClassificationTask(image_size=image_size, mutable=mutable,
                                         num_classes=num_classes, hidden=int(t.hidden)),
          definitions.RestorationTask(image_size=image_size, mutable=mutable,
                                      decoder_width=int(t.decoder_width),
                                      flux_weight=float(t.get("flux_weight", 0.0)),
                                      flux_radius_px=float(config.restoration.aperture_radius_px),
                                      asinh=asinh, lvm_decoder=decoder, lvm_residual=residual,
                                      pixel_loss=str(t.get("restoration_loss", "mse"))),
          definitions.InpaintingTask(image_size=image_size, mutable=mutable,
                                     decoder_width=int(t.decoder_width), lvm_decoder=decoder,
                                     lvm_residual=residual,
                                     fill_sigmas_px=_prefill_sigmas(config),
                                     mask_channel=bool(i.mask_channel),
                                     full_res_convs=int(i.full_res_convs),
                                     input_skip=bool(i.input_skip), pixel_loss=str(i.loss)),
          definitions.ParameterTask(image_size=image_size, mutable=mutable, hidden=int(t.hidden)))


def _fill_sigmas(config) -> tuple[float, ...]:
  """inpainting.fill_sigmas_px: the normalised-convolution fill's Gaussians (px)."""
  return tuple(float(x) for x in config.inpainting.fill_sigmas_px)


def _prefill_sigmas(config) -> tuple[float, ...]:
  """The inpainting task's fill: the fill's Gaussians with inpainting.prefill, else none."""
  return _fill_sigmas(config) if config.inpainting.get("prefill", False) else ()


def _network(kind: str, config, model_config, tasks, frozen: bool) -> network.Network:
  backbone = network.make_backbone(kind, model_config, int(config.resnet.width))
  return network.Network(backbone, {t.name: t.head() for t in tasks}, freeze_backbone=frozen)


def heldout_fn(net, tasks, val_batch):
  """variables -> [held-out mean loss per task] on a fixed batch (fixed inpainting masks)."""
  key = jax.random.key(12345)
  fns = [jax.jit(lambda v, b, t=t: jnp.mean(t.per_image_loss(net, v, b, key, False)[0]))
         for t in tasks]
  return lambda v: [float(f(v, val_batch)) for f in fns]


# --- Evaluation of trained variables ------------------------------------------------------------

def _inpainting_masks(n: int, size: int, patch: int, fraction: float, seed: int) -> np.ndarray:
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
  """Test-set scores of every task (`tasks` in make_tasks' order), or of the task named `only`."""
  names = [t.name for t in tasks]
  out: dict[str, Any] = {}
  if only is None or only == names[0]:
    logits = predict(variables, test["image"], names[0])
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))
    out["classification"] = metrics.classification_metrics(test["label"], probs)
  radius = float(config.restoration.aperture_radius_px)
  if only is None or only == names[1]:
    out.update(_restoration_scores(predict, variables, test, config, prep, radius, names[1],
                                   tasks[1].input_key))
  if only is None or only == names[2]:
    out.update(_inpainting_scores(predict, variables, test, config, prep, radius, tasks[2]))
  if only is None or only == names[3]:
    out.update(_parameter_scores(predict, variables, test, standardiser, names[3]))
  return out


def _restoration_scores(predict, variables, test, config, prep, radius, head,
                        input_key: str = "degraded", flux_scale: dict[str, float] | None = None
                        ) -> dict[str, Any]:
  """Restoration scores per degradation mode; `flux_scale` (per mode) multiplies the restored
  images' flux first (`flux_calibration`)."""
  out: dict[str, Any] = {"restoration": {}}
  for mode in ("paper", "physical"):
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
      mask = _inpainting_masks(len(test["image"]), test["image"].shape[1], p, f, 0)
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
      mask = _inpainting_masks(len(test["image"]), test["image"].shape[1], p, f, 0)
      masked = np.where(mask[..., None], 0.0, test["image"])
      out["inpainting"][f"{p}px_{f:.1f}"] = image_scores(masked, test["image"], prep, radius,
                                                         mask)
      filled = np.asarray(definitions.fill_masked(test["image"], mask, _fill_sigmas(config)))
      out["inpainting_filled"][f"{p}px_{f:.1f}"] = image_scores(filled, test["image"], prep,
                                                                radius, mask)
  out["noise_limited_psnr"] = float(np.mean(metrics.noise_limited_psnr(test["image"])))
  return out


# --- The runs -----------------------------------------------------------------------------------

def _opt(config, **over):
  c = ml_collections.ConfigDict(config.optimizer.to_dict())
  c.update(over)
  return c


def run_strategies(config, data, pre, timings) -> dict[str, Any]:
  train, test = data["train"], data["test"]
  prep, std = pre["preprocessing"], data["standardiser"]
  size = int(pre["model"].img_size)
  k = len(data["classes"])
  fit_data, val = fit_split(train, config)
  val_batch = {key: val[key] for key in ("image", "degraded", "label", "params")}
  val_batch["valid"] = np.ones(len(val["image"]), bool)
  results: dict[str, Any] = {}
  bs = int(config.batch_size)
  for kind in ("lvm", *config.resnet.kinds):
    mutable = ("batch_stats",)  # ResNet BatchNorm and the heads' standardisation
    tasks = make_tasks(config, k, size, mutable, asinh=prep.normalisation == "asinh",
                       lvm_model=pre["model"] if kind == "lvm" else None)
    mt = multitask.MultiTask(tasks, image_size=size, mutable=mutable)
    modes = (("Pre_train", True), ("Multi_uniform", False), ("Multi_active", False)) \
        if kind == "lvm" else ((kind.replace("resnet", "ResNet"), False),)
    trainers: dict[bool, training.Trainer] = {}
    predictor = init = None  # one per backbone kind: the same frozen or not
    for label, frozen in modes:
      t0 = time.time()
      net = _network(kind, config, pre["model"], tasks, frozen)
      init = init or network.initializer(net, size)  # the same variables frozen or not
      variables = init(int(config.seed))
      if kind == "lvm":
        variables = network.load_lvm_pretrained(variables, pre["params"])
      steps = int(config.steps.pre_train if frozen else
                  (config.steps.multi if kind == "lvm" else config.steps.resnet))
      if frozen not in trainers:
        trainers[frozen] = training.Trainer(net, mt, _opt(config), steps, bs, frozen=frozen)
      trainer = trainers[frozen]
      shares = None
      if label == "Multi_active":
        shares = multitask.ActiveShares(mt.names, float(config.active.temperature),
                                        float(config.active.floor),
                                        log_losses=[t.log_loss for t in tasks])
      variables, train_log = trainer.run(
          variables, fit_data, int(config.seed), shares=shares,
          heldout=heldout_fn(net, tasks, val_batch) if shares else None,
          share_every=int(config.active.every), log_every=max(1, steps // 20))
      t_train = time.time() - t0
      predictor = predictor or training.Predictor(net)
      scores = evaluate_variables(predictor, variables, test, config, prep, std, tasks)
      scores["train_log"] = train_log
      if shares is not None:
        scores["shares"] = shares.history
      scores["seconds_train"] = t_train
      scores["seconds_eval"] = time.time() - t0 - t_train
      results[label] = scores
      timings[label] = time.time() - t0
      log.info("%s: %.0f s; accuracy %.3f", label, timings[label],
               scores["classification"]["accuracy"])
    ft_steps = int(config.steps.get("fine_tuned", 0))
    if kind == "lvm" and ft_steps > 0:
      t0 = time.time()
      results["Fine_tuned"] = fine_tuned_single_tasks(
          _network(kind, config, pre["model"], tasks, False), tasks, init, pre, config,
          fit_data, test, predictor, std)
      timings["Fine_tuned"] = time.time() - t0
      log.info("Fine_tuned: %.0f s; accuracy %.3f", timings["Fine_tuned"],
               results["Fine_tuned"]["classification"]["accuracy"])
  return results


def fine_tuned_steps(config, task: str) -> int:
  """Steps of the `Fine_tuned` run of `task`: steps.fine_tuned_by_task[task] if > 0, else
  steps.fine_tuned."""
  by_task = config.steps.get("fine_tuned_by_task", None) or {}
  unknown = set(by_task) - set(definitions.TASKS)
  if unknown:
    raise ValueError(f"steps.fine_tuned_by_task has unknown tasks {sorted(unknown)}; "
                     f"known: {sorted(definitions.TASKS)}")
  return int(by_task.get(task, 0)) or int(config.steps.get("fine_tuned", 0))


def fine_tuned_single_tasks(net, tasks, init, pre, config, fit_data, test, predictor,
                            std) -> dict[str, Any]:
  """The `Fine_tuned` strategy: pretrained encoder + one head trained on one task, per task.

  Each task starts from the same pretrained variables and trains alone for
  `fine_tuned_steps(config, task)`; its scores (`evaluate_variables(..., only=task)`) come from
  its own run, its log under train_log/<task>, its steps under steps/<task>.
  """
  scores: dict[str, Any] = {"train_log": {}, "steps": {}}
  for task in tasks:
    steps = scores["steps"][task.name] = fine_tuned_steps(config, task.name)
    variables = network.load_lvm_pretrained(init(int(config.seed)), pre["params"])
    trainer = training.Trainer(net, task, _opt(config), steps, int(config.batch_size))
    variables, scores["train_log"][task.name] = trainer.run(
        variables, fit_data, int(config.seed), log_every=max(1, steps // 20))
    run = evaluate_variables(predictor, variables, test, config, pre["preprocessing"], std, tasks,
                             only=task.name)
    scores.update(run)
  return scores




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


def psf_aware_restoration(config, data, pre, refs) -> dict[str, Any]:
  """PSF-aware restoration: the LVM (encoder + image head, from the pretrained weights, fine-tuned
  for `steps.fine_tuned`) refines the Richardson-Lucy restoration with the true PSF (iterations
  tuned on training galaxies per mode) instead of the degraded image. Same data, batch and
  optimizer as `Fine_tuned`. Returns {PSF_AWARE_LABEL: {"restoration": scores per mode}}, and
  with restoration.flux_calibration_rows > 0 also {CALIBRATED_LABEL: scores after
  `flux_calibration` on that many training galaxies, "flux_scale": the factor per mode}."""
  train, test, prep = data["train"], data["test"], pre["preprocessing"]
  size = int(pre["model"].img_size)
  tuned = [int(refs["tuned"][f"richardson_lucy_{m}"]) for m in train["mode"]]
  train = {**train, "deconvolved": datasets.deconvolved(train["degraded_flux"], train["kernels"],
                                                        tuned, prep)}
  test = {**test, **{f"deconvolved_{m}": refs["deconvolved"][m] for m in ("paper", "physical")}}
  task = make_tasks(config, len(data["classes"]), size, ("batch_stats",),
                    asinh=prep.normalisation == "asinh", lvm_model=pre["model"])[1]
  task = dataclasses.replace(task, input_key="deconvolved")
  net = _network("lvm", config, pre["model"], (task,), False)
  variables = network.load_lvm_pretrained(network.init_network(net, size, int(config.seed)),
                                          pre["params"])
  fit, _ = fit_split(train, config)
  trainer = training.Trainer(net, task, _opt(config), int(config.steps.fine_tuned),
                             int(config.batch_size))
  variables, log_rows = trainer.run(variables, fit, int(config.seed),
                                    log_every=max(1, int(config.steps.fine_tuned) // 20))
  predictor = training.Predictor(net)
  radius = float(config.restoration.aperture_radius_px)
  scores = _restoration_scores(predictor, variables, test, config, prep, radius, task.name,
                               "deconvolved")
  scores["train_log"] = log_rows
  out = {PSF_AWARE_LABEL: scores}
  rows = int(config.restoration.get("flux_calibration_rows", 0))
  if rows > 0:
    iterations = {m: int(refs["tuned"][f"richardson_lucy_{m}"]) for m in ("paper", "physical")}
    scale = flux_calibration(predictor, variables, task.name, data["source"], fit["index"][:rows],
                             config, prep, iterations)
    out[CALIBRATED_LABEL] = {**_restoration_scores(predictor, variables, test, config, prep,
                                                   radius, task.name, "deconvolved", scale),
                             "flux_scale": scale}
    log.info("flux calibration on %d training galaxies: %s", len(fit["index"][:rows]), scale)
  return out


# Few-shot rows of the pretrained LVM: the encoder frozen (only the head learns) or fine-tuned
# with the head, both from the pretrained weights (config few_shot.lvm_modes).


def run_few_shot(config, data, pre, timings) -> dict[str, Any]:
  train, test = data["train"], data["test"]
  size = int(pre["model"].img_size)
  k = len(data["classes"])
  fs = config.few_shot
  out: dict[str, Any] = {}
  lvm_modes = list(fs.get("lvm_modes", ["frozen"]))
  unknown = set(lvm_modes) - set(FEW_SHOT_LVM_LABELS)
  if unknown:
    raise ValueError(f"unknown few_shot.lvm_modes {sorted(unknown)}; known: "
                     f"{sorted(FEW_SHOT_LVM_LABELS)}")
  runs = [("lvm", mode) for mode in lvm_modes] + [(kind, "") for kind in config.resnet.kinds]
  for kind, mode in runs:
    t0 = time.time()
    frozen = mode == "frozen"
    mutable = ("batch_stats",)  # the head's standardisation (and a ResNet's BatchNorm)
    task = definitions.ClassificationTask(image_size=size, mutable=mutable, num_classes=k,
                                          hidden=int(config.tasks.hidden))
    net = _network(kind, config, pre["model"], (task,), frozen)
    trainer = training.Trainer(net, task, _opt(config, warmup_steps=0), int(fs.steps),
                               int(fs.batch_size), frozen=frozen)
    predict = training.Predictor(net)
    init = network.initializer(net, size)
    label = FEW_SHOT_LVM_LABELS[mode] if kind == "lvm" else kind.replace("resnet", "ResNet")
    rows = []
    for per_class in fs.per_class:
      for seed in fs.seeds:
        subset = datasets.few_shot_subset(train["label"], int(per_class), range(k), int(seed))
        variables = init(int(seed))
        if kind == "lvm":
          variables = network.load_lvm_pretrained(variables, pre["params"])
        variables, _ = trainer.run(variables, _select(train, subset), int(seed))
        logits = predict(variables, test["image"], task.name)
        acc = float(np.mean(np.argmax(logits, 1) == test["label"]))
        rows.append({"per_class": int(per_class), "seed": int(seed), "n_labels": int(len(subset)),
                     "accuracy": acc})
    out[label] = rows
    timings[f"few_shot/{label}"] = time.time() - t0
    log.info("few-shot %s: %.0f s", label, timings[f"few_shot/{label}"])
  return out


@dataclasses.dataclass
class Evaluation:
  """What `evaluate` measured: `results` (JSON-ready: provenance, scores, few-shot runs,
  timings) and the arrays the report's figures draw on (`data`, `strategies`, `refs`)."""
  results: dict[str, Any]
  data: dict[str, Any]
  strategies: dict[str, Any]
  refs: dict[str, Any]


def evaluate(config) -> Evaluation:
  """Runs every strategy, the references and the few-shot curve of `config`; writes nothing
  (`lvm_jax.downstream.report.write` writes results.json, the report and its figures)."""
  t_start = time.time()
  timings: dict[str, float] = {}
  pre = load_pretrained(resolve_pretrained(config))
  t0 = time.time()
  data = load_data(config, pre)
  timings["data"] = time.time() - t0
  log.info("data: %d train, %d test galaxies, classes %s (%.0f s)", len(data["train"]["image"]),
           len(data["test"]["image"]), data["classes"], timings["data"])
  t0 = time.time()
  refs = reference_scores(data, config, pre["preprocessing"])
  timings["baselines"] = time.time() - t0
  log.info("classical baselines: %.0f s; tuned %s", timings["baselines"], refs["tuned"])
  strategies = run_strategies(config, data, pre, timings)
  psf_aware: dict[str, Any] = {}
  if config.restoration.get("psf_aware", False) and int(config.steps.get("fine_tuned", 0)) > 0:
    t0 = time.time()
    psf_aware = psf_aware_restoration(config, data, pre, refs)
    timings[PSF_AWARE_LABEL] = time.time() - t0
  few_shot = run_few_shot(config, data, pre, timings)
  timings["total"] = time.time() - t_start
  results = {
      "provenance": provenance.provenance(
          config=json.loads(config.to_json_best_effort()), pretrained=pre["path"],
          pretrained_step=pre["step"], preprocessing=pre["preprocessing"].to_dict(),
          model=pre["model"].to_dict(), devices=[str(d) for d in jax.devices()[:1]],
          device_count=jax.device_count()),
      "classes": data["classes"], "class_counts_train": data["class_counts_train"],
      "n_train": int(len(data["train"]["image"])), "n_test": int(len(data["test"]["image"])),
      "standardiser": data["standardiser"].to_dict(),
      "references": {k: v for k, v in refs.items() if k not in ("gallery", "deconvolved")},
      "strategies": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                     for k, v in strategies.items()},
      "psf_aware": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                    for k, v in psf_aware.items()},
      "few_shot": few_shot, "timings_s": timings}
  return Evaluation(results=results, data=data, strategies=strategies, refs=refs)
