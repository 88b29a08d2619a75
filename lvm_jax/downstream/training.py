"""Downstream training on in-memory arrays with the trainer's jitted step.

`Trainer(net, task, opt_config, steps, frozen)` builds the optimizer (`lvm_jax.train.optimizer`,
backbone updates zeroed when frozen) and the train step (`lvm_jax.train.step.make_train_step`)
once; `run(variables, data, seed)` then trains from given variables on a dict of NumPy arrays
(rows = galaxies) as often as needed (few-shot curves, seeds) without recompiling. Batches are
drawn with replacement from `np.random.default_rng(seed)` and augmented by one random dihedral
transform per batch (`lvm_jax.downstream.labels.dihedral`, which also transforms PA labels).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax.downstream import labels as labels_lib
from lvm_jax.downstream import multitask
from lvm_jax.train import optimizer as optimizer_lib
from lvm_jax.train import step as step_lib


def sample_batch(data: Mapping[str, np.ndarray], keys, batch_size: int,
                 rng: np.random.Generator, augment: bool) -> dict[str, np.ndarray]:
  n = len(next(iter(data.values())))
  idx = rng.choice(n, batch_size, replace=n < batch_size)
  batch = {k: data[k][idx] for k in keys if k in data}
  if augment:
    batch = labels_lib.dihedral(batch, int(rng.integers(4)), bool(rng.integers(2)))
  batch["valid"] = np.ones(batch_size, bool)
  return batch


class Trainer:
  """One compiled train step for (network, task, optimizer, number of steps, frozen)."""

  def __init__(self, net, task, opt_config, steps: int, batch_size: int, *,
               frozen: bool = False, augment: bool = True, step_seed: int = 0):
    self.net, self.task, self.steps, self.batch_size = net, task, int(steps), int(batch_size)
    self.augment = augment
    self.tx, self.schedule = optimizer_lib.make_optimizer(
        opt_config, self.steps, frozen=("backbone",) if frozen else ())
    step = step_lib.make_train_step(net, task, self.tx, self.schedule, seed=step_seed)
    self._step = jax.jit(step, donate_argnums=(0,))
    self._opt_init = jax.jit(self.tx.init)
    self._keys = tuple(k for k in task.batch_keys if k not in ("valid", "task_weight"))
    self._is_multi = isinstance(task, multitask.MultiTask)

  def init_state(self, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The train state, committed to the first device as the step's outputs are: with some
    leaves uncommitted, the second step would see new input shardings and compile again."""
    params = variables["params"]
    state = {"step": jnp.zeros((), jnp.int32), "params": params,
             "opt_state": self._opt_init(params),
             "model_state": {k: v for k, v in variables.items() if k != "params"}}
    return jax.device_put(state, jax.devices()[0])

  def run(self, variables, data: Mapping[str, np.ndarray], seed: int, *,
          shares: multitask.ActiveShares | None = None,
          heldout: Callable[[dict[str, Any]], list[float]] | None = None,
          share_every: int = 0, log_every: int = 0) -> tuple[dict[str, Any], list[dict]]:
    """(trained variables, log rows). For a MultiTask: `shares` None is Multi_uniform; with
    `shares` and `heldout` (variables -> held-out loss per task) the shares are updated every
    `share_every` steps (Multi_active)."""
    rng = np.random.default_rng(seed)
    state = self.init_state(jax.tree.map(jnp.array, dict(variables)))
    n_tasks = len(self.task.tasks) if self._is_multi else 0
    weights = multitask.uniform_shares(n_tasks) if n_tasks else None
    log, t0 = [], time.time()
    for step in range(self.steps):
      if shares is not None and heldout is not None and share_every and step % share_every == 0:
        weights = shares.update(step, heldout(self.variables(state)))
      batch = sample_batch(data, self._keys, self.batch_size, rng, self.augment)
      if n_tasks:
        batch["task_weight"] = np.broadcast_to(weights.astype(np.float32),
                                               (self.batch_size, n_tasks)).copy()
      state, metrics = self._step(state, batch)
      if log_every and ((step + 1) % log_every == 0 or step + 1 == self.steps):
        row = {k: float(v) for k, v in jax.device_get(metrics).items()}
        row.update(step=step + 1, seconds=time.time() - t0)
        log.append(row)
    if shares is not None and heldout is not None:
      shares.update(self.steps, heldout(self.variables(state)))
    return self.variables(state), log

  @staticmethod
  def variables(state) -> dict[str, Any]:
    return {"params": state["params"], **state["model_state"]}


class Predictor:
  """Jitted inference of one head over arrays in fixed-size batches (the last one padded)."""

  def __init__(self, net, batch_size: int = 64):
    self.net, self.batch_size = net, batch_size
    self._apply = jax.jit(lambda v, x, head: net.apply(v, x, head, train=False),
                          static_argnums=2)

  def __call__(self, variables, images: np.ndarray, head: str):
    outs = []
    n = len(images)
    for i in range(0, n, self.batch_size):
      x = images[i:i + self.batch_size]
      pad = self.batch_size - len(x)
      if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
      outs.append(jax.device_get(self._apply(variables, x, head)))
    cat = lambda *a: np.concatenate(a)[:n]  # noqa: E731
    return jax.tree.map(cat, *outs)
