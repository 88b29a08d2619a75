"""The runs of the downstream evaluation: each strategy's training of the four heads
(`run_strategies`: Pre_train, Multi_uniform, Multi_active, Fine_tuned, ResNets from scratch),
PSF-aware restoration (`psf_aware_restoration`) and the few-shot curve (`run_few_shot`).

`data` is `lvm_jax.downstream.evaluation.load_data`'s dict, `pre` its `load_pretrained`'s; scores
come from `lvm_jax.downstream.scoring`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lvm_jax import models
from lvm_jax.downstream import datasets
from lvm_jax.downstream import definitions
from lvm_jax.downstream import multitask
from lvm_jax.downstream import network
from lvm_jax.downstream import training
from lvm_jax.downstream.definitions import (CALIBRATED_LABEL, FEW_SHOT_LVM_LABELS,
                                             PSF_AWARE_LABEL)
from lvm_jax.downstream.scoring import (evaluate_variables, fill_sigmas, flux_calibration,
                                         restoration_scores)

log = logging.getLogger("lvm_jax.downstream.evaluation")


def _opt(config, **over):
  c = ml_collections.ConfigDict(config.optimizer.to_dict())
  c.update(over)
  return c


def select_rows(data: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
  return {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in data.items()}


def fit_split(train: dict[str, Any], config) -> tuple[dict[str, Any], dict[str, Any]]:
  """(fit, held-out) rows of the training set: the last `active.val_rows` galaxies are held out
  (Multi_active's shares are measured on them); every strategy trains on the same fit rows."""
  n = len(train["image"])
  cut = n - int(config.active.val_rows)
  return select_rows(train, np.arange(cut)), select_rows(train, np.arange(cut, n))


def make_tasks(config, num_classes: int, image_size: int, mutable=(), asinh: bool = True,
               lvm_model=None) -> tuple[Any, ...]:
  """The tasks named by `tasks.names` (default all four, in `definitions.TASKS` order; a set
  without physical parameters, an ingested one, leaves out "parameters"). `lvm_model` (the LVM's
  model config, for an LVM backbone) with `tasks.image_head` "lvm" gives restoration and
  inpainting the pretrained LVM decoder as head; otherwise (and for ResNets) they get the
  convolutional `ImageDecoder`."""
  t, i = config.tasks, config.inpainting
  names = list(t.get("names", None) or definitions.TASKS)
  unknown = set(names) - set(definitions.TASKS)
  if unknown or "classification" not in names:
    raise ValueError(f"tasks.names {names}: needs 'classification', and only known tasks "
                     f"{sorted(definitions.TASKS)}")
  image_head = str(t.get("image_head", "conv"))
  if image_head not in ("conv", "lvm"):
    raise ValueError(f"unknown tasks.image_head {image_head!r}; known: conv, lvm")
  decoder = models.build(lvm_model) if lvm_model is not None and image_head == "lvm" else None
  residual = bool(t.get("lvm_residual", False))
  every = (definitions.ClassificationTask(image_size=image_size, mutable=mutable,
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
  return tuple(task for task in every if task.name in names)


def _prefill_sigmas(config) -> tuple[float, ...]:
  """The inpainting task's fill: the fill's Gaussians with inpainting.prefill, else none."""
  return fill_sigmas(config) if config.inpainting.get("prefill", False) else ()


def _network(kind: str, config, model_config, tasks, frozen: bool) -> network.Network:
  backbone = network.make_backbone(kind, model_config, int(config.resnet.width))
  return network.Network(backbone, {t.name: t.head() for t in tasks}, freeze_backbone=frozen)


def heldout_fn(net, tasks, val_batch):
  """variables -> [held-out mean loss per task] on a fixed batch (fixed inpainting masks)."""
  key = jax.random.key(12345)
  fns = [jax.jit(lambda v, b, t=t: jnp.mean(t.per_image_loss(net, v, b, key, False)[0]))
         for t in tasks]
  return lambda v: [float(f(v, val_batch)) for f in fns]


def run_strategies(config, data, pre, timings) -> dict[str, Any]:
  train, test = data["train"], data["test"]
  prep, std = pre["preprocessing"], data.get("standardiser")
  size = int(pre["model"].img_size)
  k = len(data["classes"])
  fit_data, val = fit_split(train, config)
  val_batch = {key: val[key] for key in ("image", "degraded", "label", "params") if key in val}
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
  task = {t.name: t for t in make_tasks(config, len(data["classes"]), size, ("batch_stats",),
                                        asinh=prep.normalisation == "asinh",
                                        lvm_model=pre["model"])}["restoration"]
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
  scores = restoration_scores(predictor, variables, test, config, prep, radius, task.name,
                               "deconvolved")
  scores["train_log"] = log_rows
  out = {PSF_AWARE_LABEL: scores}
  rows = int(config.restoration.get("flux_calibration_rows", 0))
  if rows > 0:
    iterations = {m: int(refs["tuned"][f"richardson_lucy_{m}"]) for m in ("paper", "physical")}
    scale = flux_calibration(predictor, variables, task.name, data["source"], fit["index"][:rows],
                             config, prep, iterations)
    out[CALIBRATED_LABEL] = {**restoration_scores(predictor, variables, test, config, prep,
                                                   radius, task.name, "deconvolved", scale),
                             "flux_scale": scale}
    log.info("flux calibration on %d training galaxies: %s", len(fit["index"][:rows]), scale)
  return out


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
        variables, _ = trainer.run(variables, select_rows(train, subset), int(seed))
        logits = predict(variables, test["image"], task.name)
        acc = float(np.mean(np.argmax(logits, 1) == test["label"]))
        rows.append({"per_class": int(per_class), "seed": int(seed), "n_labels": int(len(subset)),
                     "accuracy": acc})
    out[label] = rows
    timings[f"few_shot/{label}"] = time.time() - t0
    log.info("few-shot %s: %.0f s", label, timings[f"few_shot/{label}"])
  return out
