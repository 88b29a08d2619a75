"""Multitask training: several tasks on one shared backbone, each task's loss weighted by its share.

Loss = sum_t T w_t L_t, with shares w_t (sum 1, T tasks; all w_t = 1/T gives weight 1 each) read
from the batch field `task_weight` (B, T) (every row the same), so a share schedule changes them
between steps without recompiling.

Share schedules (strategies of the paper's Tables 1-4):
* `Multi_uniform`: w_t = 1 / T throughout.
* `Multi_active`: every `every` steps each task's held-out loss l_t is measured and compared
  with its value before training: r_t = l_t / l_t(0) for a loss that is an error (MSE), and
  r_t = exp(l_t - l_t(0)) for one that is a negative log-likelihood or a log error
  (cross-entropy, Gaussian NLL, log MSE: these can be negative, and the exponent of their change
  is the ratio of geometric-mean likelihoods or errors). 1: no progress; tasks that lag have the
  larger ratio. The new shares are

      w_t = (1 - floor) softmax_t(r_t / temperature) + floor / T,

  so the lagging tasks get more of the training, every task keeps at least floor / T, and equal
  progress gives equal shares. The shares over time are logged (`ActiveShares.history`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from lvm_jax.downstream import base


@dataclasses.dataclass(frozen=True)
class MultiTask:
  """The trainer-interface task for a tuple of tasks whose heads share one backbone."""
  tasks: tuple[Any, ...]
  image_size: int = 64
  mutable: tuple[str, ...] = ()

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(t.name for t in self.tasks)

  @property
  def batch_keys(self) -> tuple[str, ...]:
    keys = []
    for t in self.tasks:
      keys += [k for k in t.batch_keys if k not in keys]
    return (*keys, "task_weight")

  def init_variables(self, model, seed: int, shardings=None) -> dict[str, Any]:
    del shardings
    return base.init_variables(model, self.image_size, seed)

  def loss_fn(self, model, variables, batch, rng, train: bool = True):
    import jax
    weights = batch["task_weight"][0].astype(jnp.float32) * len(self.tasks)
    total, metrics, new_state = 0.0, {}, {}
    for i, (task, key) in enumerate(zip(self.tasks, jax.random.split(rng, len(self.tasks)))):
      v = {**variables, **new_state}
      per_image, state = task.per_image_loss(model, v, batch, key, train)
      loss, m = base.mean_loss(per_image, batch["valid"])
      total = total + weights[i] * loss
      metrics[f"{task.name}/loss"] = m["loss"]
      new_state = state or new_state
    metrics["count"] = m["count"]
    metrics["loss"] = total * m["count"]
    return total, (metrics, new_state)


def uniform_shares(n: int) -> np.ndarray:
  return np.full(n, 1.0 / n)


def active_shares(ratios: Sequence[float], temperature: float = 0.25, floor: float = 0.2
                  ) -> np.ndarray:
  """(T,) shares from the held-out progress ratios r_t (`progress_ratios`; module docstring)."""
  r = np.asarray(ratios, np.float64)
  if r.ndim != 1 or not np.isfinite(r).all():
    raise ValueError(f"ratios must be a finite (T,) vector, got {ratios!r}")
  z = (r - r.max()) / temperature
  soft = np.exp(z) / np.exp(z).sum()
  return (1.0 - floor) * soft + floor / len(r)


def progress_ratios(losses, initial, log_losses) -> np.ndarray:
  """(T,) r_t: l_t / l_t(0), or exp(l_t - l_t(0)) where log_losses[t] (see the module docstring)."""
  losses, initial = np.asarray(losses, np.float64), np.asarray(initial, np.float64)
  log = np.asarray(log_losses, bool)
  if np.any(~log & ((losses < 0) | (initial <= 0))):
    raise ValueError(f"held-out losses {losses.tolist()} (initial {initial.tolist()}): a ratio "
                     "needs positive losses; mark log-likelihood losses in log_losses")
  return np.where(log, np.exp(losses - initial), losses / np.where(log, 1.0, initial))


class ActiveShares:
  """The Multi_active schedule's state: initial held-out losses and the logged shares.

  `log_losses` (T,) bool: which tasks' losses are negative log-likelihoods or log errors
  (a task's `log_loss`); default none."""

  def __init__(self, names: Sequence[str], temperature: float = 0.25, floor: float = 0.2,
               log_losses: Sequence[bool] = ()):
    self.names = tuple(names)
    self.log_losses = tuple(log_losses) or (False,) * len(self.names)
    if len(self.log_losses) != len(self.names):
      raise ValueError(f"log_losses {self.log_losses} for tasks {self.names}")
    self.temperature, self.floor = temperature, floor
    self.initial: np.ndarray | None = None
    self.shares = uniform_shares(len(self.names))
    self.history: list[dict[str, Any]] = []

  def update(self, step: int, heldout_losses: Sequence[float]) -> np.ndarray:
    losses = np.asarray(heldout_losses, np.float64)
    if self.initial is None:
      self.initial = np.where(self.log_losses, losses, np.maximum(losses, 1e-12))
    else:
      self.shares = active_shares(progress_ratios(losses, self.initial, self.log_losses),
                                  self.temperature, self.floor)
    self.history.append({"step": int(step), "shares": dict(zip(self.names, self.shares.tolist())),
                         "heldout_loss": dict(zip(self.names, losses.tolist()))})
    return self.shares
