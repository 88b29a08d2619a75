"""`train_and_evaluate(config, workdir)`: sharded training with evaluation, checkpoints, logs.

Shapes first, then state created already sharded; the step is compiled ahead of time with
explicit shardings and donated state, then all processes meet at a barrier before step 1.
A workdir that holds a checkpoint is resumed from it (params, optimizer state, EMA, data
iterator position); SIGTERM (or Orbax's multi-host preemption sync point) makes the loop save
at the next step boundary and return.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from lvm_jax import checkpoint
from lvm_jax import config as config_lib
from lvm_jax import locks
from lvm_jax import models
from lvm_jax import provenance
from lvm_jax.train import data as data_lib
from lvm_jax.train import evaluators as evaluators_lib
from lvm_jax.train import input as input_lib
from lvm_jax.train import optimizer as optimizer_lib
from lvm_jax.train import resume as resume_lib
from lvm_jax.train import sharding as sharding_lib
from lvm_jax.train import step as step_lib
from lvm_jax.train import objectives
from lvm_jax.train import writers

log = logging.getLogger(__name__)


class _Preemption:
  """SIGTERM only sets a flag; the loop acts on it at the next step boundary."""

  def __init__(self, install: bool):
    self.requested = False
    self._previous = None
    if install:
      try:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
      except ValueError:  # not the main thread
        self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _no_replica_parallel_saves() -> None:
  """Orbax saves each array from one replica instead of slicing it across replicas.

  Replica-parallel saving jit-compiles a slice per array and replica count: on CPU the first
  save of the tiny model took 26 s instead of 0.4 s. (A candidate for `lvm_jax.checkpoint`.)
  """
  import orbax.checkpoint as ocp
  ocp.type_handlers.register_type_handler(
      jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True)


def _with_shardings(abstract, shardings):
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract, shardings)


def write_run_info(workdir: pathlib.Path, config) -> None:
  """config.json and provenance.json (git SHA, package versions) in the workdir."""
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  (workdir / "provenance.json").write_text(json.dumps(
      provenance.provenance(devices=[str(d) for d in jax.devices()[:8]],
                            device_count=jax.device_count(),
                            process_count=jax.process_count()), indent=2))


def _mean_metrics(history: list[dict[str, Any]]) -> dict[str, float]:
  fetched = jax.device_get(history)
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


def _log_state(history: list[dict[str, Any]], last_log_step: int) -> dict[str, Any]:
  """The metrics of the steps since the last log line (JSON), saved with each checkpoint."""
  fetched = jax.device_get(history)
  return {"last_log_step": int(last_log_step),
          "pending": [{k: float(v) for k, v in m.items()} for m in fetched]}


def _restore_history(log_state: dict[str, Any] | None) -> list[dict[str, Any]]:
  """`_log_state`'s pending metrics as float32 scalars, as the step returned them."""
  if not log_state:
    return []
  return [{k: np.float32(v) for k, v in m.items()} for m in log_state["pending"]]


def train_and_evaluate(config, workdir: str | os.PathLike, init_from: str | None = None,
                       task=None, *, allow_config_change: bool = False,
                       fallback: bool = True) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns a summary.

  `task`: a task object (`lvm_jax.train.objectives`); default `make_task(config.task)`. Its mutable
  collections (`task.mutable`, e.g. BatchNorm statistics) start from `task.init_variables`, are
  updated by the step and are checkpointed as the `model_state` item.
  Resuming compares the saved config with `config` (`lvm_jax.train.resume`; other changes need
  `allow_config_change`); a newest step that fails its digests is set aside to
  `checkpoints.broken/` and the newest intact one is used (`fallback=False`: stop instead).
  The workdir is locked (`lvm_jax.locks`) while the run lasts.
  """
  config_lib.validate(config)
  workdir = pathlib.Path(workdir).absolute()
  is_main = jax.process_index() == 0
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)
  with locks.hold(workdir / locks.LOCK_NAME, f"training workdir {workdir}", enabled=is_main):
    return _train(config, workdir, init_from, task, allow_config_change, fallback)


def _train(config, workdir: pathlib.Path, init_from, task, allow_config_change: bool,
           fallback: bool) -> dict[str, Any]:
  is_main = jax.process_index() == 0
  ckpt_dir = workdir / "checkpoints"
  if checkpoint.steps(ckpt_dir):  # before anything is written or built
    saved = checkpoint.read_json(ckpt_dir, "config").get("train")
    if saved is not None:
      resume_lib.check(saved, json.loads(config.to_json_best_effort()), workdir=str(workdir),
                       allow_change=allow_config_change)
  if is_main:
    write_run_info(workdir, config)
  multihost_utils.sync_global_devices("workdir")

  # --- Shapes, shardings, model, task, optimizer -------------------------------------------
  mesh = sharding_lib.make_mesh(config.mesh.shape, config.mesh.axes)
  model = models.build(config.model)
  task = task or objectives.make_task(config.task)
  abstract_params = models.abstract_params(model)
  param_sh = sharding_lib.tree_shardings(abstract_params, mesh, config.sharding)
  tx, schedule = optimizer_lib.make_optimizer(config.optimizer, config.num_steps)
  abstract_opt = jax.eval_shape(tx.init, abstract_params)
  opt_sh = sharding_lib.tree_shardings(abstract_opt, mesh, config.sharding)
  batch_sh = sharding_lib.batch_sharding(mesh, config.sharding)
  use_ema = config.ema_decay > 0

  # --- State: restored, initialised from a converted checkpoint, or fresh -------------------
  _no_replica_parallel_saves()
  mngr = checkpoint.manager(ckpt_dir, max_to_keep=config.checkpoint.keep,
                            async_save=config.checkpoint.async_save)
  start_step, data_state, log_state = 0, None, None
  latest = mngr.latest_step()
  rep = sharding_lib.replicated(mesh)
  initial_model_state, variables = {}, None
  if task.mutable:  # small collections (BatchNorm statistics): replicated
    variables = task.init_variables(model, int(config.seed), shardings=param_sh)
    initial_model_state = jax.device_put(
        {k: v for k, v in variables.items() if k != "params"}, rep)
  if latest is not None:
    abstract = {"params": _with_shardings(abstract_params, param_sh),
                "opt_state": _with_shardings(abstract_opt, opt_sh)}
    items = ("params", "opt_state", "data_iter", "log_state")
    if use_ema:
      abstract["ema_params"] = abstract["params"]
      items += ("ema_params",)
    if initial_model_state:
      abstract["model_state"] = initial_model_state
      items += ("model_state",)
    restored = checkpoint.restore(ckpt_dir, abstract=abstract, items=items, mngr=mngr,
                                  fallback=fallback)
    if restored["skipped"]:  # broken newer steps: set aside, so that they are saved again
      if is_main:
        for bad in restored["skipped"]:
          log.warning("set aside broken step %d: %s", bad, checkpoint.set_aside(ckpt_dir, bad))
      multihost_utils.sync_global_devices("set_aside")
      mngr.reload()
    latest = restored["step"]
    state = {"step": jax.device_put(jnp.asarray(latest, jnp.int32), rep),
             "params": restored["params"], "opt_state": restored["opt_state"],
             "model_state": restored.get("model_state", {})}
    if use_ema:
      state["ema_params"] = restored["ema_params"]
    start_step, data_state, log_state = latest, restored["data_iter"], restored["log_state"]
    log.info("restored step %d from %s", latest, ckpt_dir)
  else:
    if init_from:
      params = checkpoint.restore(init_from, abstract={
          "params": _with_shardings(abstract_params, param_sh)}, items=("params",))["params"]
      log.info("initialised params from %s", init_from)
    else:
      variables = variables or task.init_variables(model, int(config.seed), shardings=param_sh)
      params = variables["params"]
    state = step_lib.create_state(params, tx, param_sh, opt_sh, mesh, ema=use_ema,
                                  model_state=initial_model_state)
  del variables

  # --- Data ------------------------------------------------------------------------------------
  image_size = int(config.model.img_size)
  train_source, val_source = data_lib.make_sources(config.data)
  image_kind = data_lib.image_kind(config.data)  # recorded in each checkpoint's meta
  pipeline = data_lib.make_train_pipeline(config.data, train_source, image_size,
                                          int(config.batch_size), int(config.seed))
  data_axes = sharding_lib.batch_axes(mesh, config.sharding)
  iterator = input_lib.GlobalBatchIterator(
      pipeline, mesh, data_axes=data_axes, prefetch=int(config.data.prefetch),
      start_step=0 if data_state is None else int(data_state["next_batch"]))
  if data_state is not None:
    mine = iterator.get_state()
    for key in ("seed", "global_batch_size", "num_records"):
      if int(data_state[key]) != mine[key]:
        raise resume_lib.ResumeError(f"{workdir}: checkpoint data state has {key}="
                                     f"{data_state[key]}, the config gives {mine[key]}")

  # --- Compile ahead of time, then a barrier -------------------------------------------------
  train_step = step_lib.make_train_step(
      model, task, tx, schedule, seed=int(config.seed), grad_accum=int(config.grad_accum),
      ema_decay=float(config.ema_decay), remat=config.remat, batch_sharding=batch_sh)
  b = int(config.batch_size)
  batch_abstract = {"image": jax.ShapeDtypeStruct((b, image_size, image_size, 3), jnp.float32,
                                                  sharding=batch_sh),
                    "valid": jax.ShapeDtypeStruct((b,), jnp.bool_, sharding=batch_sh)}
  t0 = time.time()
  compiled = step_lib.compile_train_step(train_step, state, batch_abstract, mesh)
  memory = step_lib.memory_summary(compiled)
  multihost_utils.sync_global_devices("compiled")
  log.info("compiled the train step in %.1f s; memory %s", time.time() - t0, memory)

  writer = writers.MetricWriter(workdir, enabled=is_main, tensorboard=config.log.tensorboard)
  writer.truncate_after(start_step)
  writer.write(start_step, "compile", {"seconds": time.time() - t0, **memory,
                                       "restored": latest is not None})

  # --- Evaluators ------------------------------------------------------------------------------
  evaluators = {}
  eval_ctx = None
  if config.eval.evaluators and config.data.val_size > 0:
    eval_set = data_lib.load_eval_set(config.data, val_source, image_size)
    eval_ctx = evaluators_lib.EvalContext(model, task, mesh, param_sh, batch_sh, eval_set,
                                          config.eval.batch_size, int(config.seed))
    random_params = lambda: models.init_params(model, int(config.seed) + 1000,  # noqa: E731
                                               shardings=param_sh)
    evaluators = evaluators_lib.make_evaluators(config.eval.evaluators, eval_ctx, config.eval,
                                                random_params)

  def run_eval(step: int) -> dict[str, float]:
    out = {}
    for name, evaluator in evaluators.items():
      for k, v in evaluator(state["params"]).items():
        out[f"{name}/{k}"] = v
    writer.write(step, "eval", out)
    return out

  def gallery(step: int) -> None:
    if eval_ctx is None:
      return
    n = min(int(config.log.gallery_images), eval_ctx.n)
    images = eval_ctx.images[:n]
    degraded, recon = eval_ctx.reconstruct(state["params"], images)
    if is_main:
      writers.save_gallery(workdir / "gallery" / f"step_{step:07d}.png", images, degraded, recon,
                           title=f"step {step}")

  def save(step: int) -> None:
    checkpoint.save(ckpt_dir, step, params=state["params"], opt_state=state["opt_state"],
                    ema_params=state.get("ema_params"), model_state=state["model_state"],
                    data_iter=iterator.get_state(),
                    config={"model": config.model.to_dict(),
                            "train": json.loads(config.to_json_best_effort())},
                    meta={"preprocessing": data_lib.preprocessing(config.data,
                                                                  image_size).to_dict(),
                          "image_kind": image_kind,
                          "seed": int(config.seed), "step": int(step)},
                    log_state=_log_state(history, last_log_step), mngr=mngr)

  # --- The loop ------------------------------------------------------------------------------
  preemption = _Preemption(install=jax.process_count() == 1)
  num_steps = int(config.num_steps)
  history: list[dict[str, Any]] = _restore_history(log_state)
  last_log_time, last_log_step = time.time(), start_step
  train_metrics: dict[str, float] = {}
  eval_metrics: dict[str, float] = {}
  profile = list(config.log.profile_steps)
  progress = None
  if is_main and config.log.progress:
    from tqdm import tqdm
    progress = tqdm(total=num_steps, initial=start_step, unit="step", dynamic_ncols=True)
  step = start_step
  saved_step = start_step if latest is not None else None
  preempted = False
  t_start = time.time()
  try:
    while step < num_steps:
      if profile and step == profile[0] and is_main:
        jax.profiler.start_trace(str(workdir / "profile"))
      batch = next(iterator)
      state, metrics = compiled(state, {k: batch[k] for k in task.batch_keys})
      history.append(metrics)
      step += 1
      if profile and step == profile[1] and is_main:
        jax.block_until_ready(state)
        jax.profiler.stop_trace()
      if step % config.log.every_steps == 0 or step == num_steps:
        train_metrics = _mean_metrics(history)
        history = []
        now = time.time()
        train_metrics["img_per_s"] = (step - last_log_step) * b / max(now - last_log_time, 1e-9)
        last_log_time, last_log_step = now, step
        writer.write(step, "train", train_metrics)
        if progress is not None:
          progress.set_postfix(loss=f"{train_metrics['loss']:.4g}",
                               img_s=f"{train_metrics['img_per_s']:.1f}")
      if progress is not None:
        progress.update(1)
      if evaluators and (step % config.eval.every_steps == 0 or step == num_steps):
        eval_metrics = run_eval(step)
      if config.log.gallery_every_steps and (step % config.log.gallery_every_steps == 0
                                             or step == num_steps):
        gallery(step)
      if config.debug.sigterm_at_step and step == config.debug.sigterm_at_step:
        os.kill(os.getpid(), signal.SIGTERM)
      preempted = preemption.requested or (jax.process_count() > 1
                                           and mngr.reached_preemption(step))
      if step % config.checkpoint.every_steps == 0 or step == num_steps or preempted:
        save(step)
        saved_step = step
        if config.debug.kill_after_checkpoint_step == step:
          mngr.wait_until_finished()
          os.kill(os.getpid(), signal.SIGKILL)
      if preempted:
        log.warning("preemption requested: saved step %d, exiting", step)
        break
  finally:
    if progress is not None:
      progress.close()
    preemption.restore()
    mngr.wait_until_finished()
    iterator.close()
    writer.close()
    mngr.close()
  seconds = time.time() - t_start
  return {"step": step, "start_step": start_step, "preempted": preempted,
          "saved_step": saved_step, "train": train_metrics, "eval": eval_metrics,
          "seconds": seconds, "memory": memory}
