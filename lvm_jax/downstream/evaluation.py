"""`lvm-jax evaluate`: the paper's downstream evaluation on a pretrained LVM (Tables 1-4, Fig. 5).

Steps (all seeded; see the `downstream` config):
A checkpoint pretrained on a split of an ingested set (`data.split`) is evaluated on the
ingest's other splits instead (`lvm_jax.downstream.ingested`); below, the simulated survey.
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
This module is the driver (the pretrained checkpoint, the data, `evaluate`); the runs per
strategy and the few-shot curve live in `lvm_jax.downstream.strategies`, the test-set and
reference scores and the flux calibration in `lvm_jax.downstream.scoring`.
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
import ml_collections
import numpy as np

from lvm_jax import checkpoint
from lvm_jax import provenance
from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.downstream import datasets
from lvm_jax.downstream import labels as labels_lib
# the labels, scores and runs, importable from here as before the split
from lvm_jax.downstream.definitions import (CALIBRATED_LABEL, FEW_SHOT_LVM_LABELS,  # noqa: F401
                                             PSF_AWARE_LABEL)
from lvm_jax.downstream.scoring import (evaluate_variables, flux_calibration,  # noqa: F401
                                         image_scores, reference_scores)
from lvm_jax.downstream.strategies import (fine_tuned_single_tasks,  # noqa: F401
                                            fine_tuned_steps, fit_split, heldout_fn, make_tasks,
                                            psf_aware_restoration, run_few_shot, run_strategies,
                                            select_rows)

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
          "split_seed": int(data.get("split_seed", 2024)), "split": str(data.get("split", "")),
          "image_kind": str(ckpt["meta"].get("image_kind", "flux")), "path": str(workdir)}


def load_data(config, pre) -> dict[str, Any]:
  if pre.get("split"):
    raise ValueError(f"{pre['path']} was pretrained on split {pre['split']!r} of an ingested "
                     "survey: `evaluate` reads its other splits (lvm_jax.downstream.ingested)")
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
  train, test = (select_rows(d, np.flatnonzero(remap[d["label"]] >= 0)) for d in (train, test))
  for d in (train, test):
    d["label"] = remap[d["label"]]
  standardiser = labels_lib.Standardiser(train["params"])
  train["params_raw"], train["params"] = train["params"], standardiser.forward(train["params"])
  test["params_raw"] = test["params"]
  test["params"] = standardiser.forward(test["params"])
  return {"train": train, "test": test, "tune": tune, "classes": classes,
          "class_counts_train": counts.tolist(), "standardiser": standardiser, "source": source}


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
  if pre["split"]:  # pretrained on a split of an ingested, labelled set: evaluate on the others
    from lvm_jax.downstream import ingested
    return Evaluation(results=ingested.evaluate(config, pre), data={}, strategies={}, refs={})
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
