"""What every downstream task shares: running one head of the network (with BatchNorm state)
and turning per-image losses into the trainer's (loss, (metric sums, new state)).

The task interface is `lvm_jax.train.objectives`'s: init_variables / loss_fn / mutable / batch_keys.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def run_head(model, variables, images, head: str, rng, train: bool, mutable: tuple[str, ...]):
  """(head output, new mutable collections ({} unless training)).

  In training every collection of `variables` besides "params" (BatchNorm statistics of a ResNet
  backbone or of the heads' standardisation) is updated, as well as those named in `mutable`.
  """
  rngs = {"dropout": rng}
  mutable = tuple(sorted(set(mutable) | {c for c in variables if c != "params"}))
  if mutable and train:
    out, new_state = model.apply(variables, images, head, train=True, rngs=rngs,
                                 mutable=list(mutable))
    return out, dict(new_state)
  return model.apply(variables, images, head, train=train, rngs=rngs), {}


def mean_loss(per_image: jnp.ndarray, valid: jnp.ndarray, prefix: str = ""
              ) -> tuple[jnp.ndarray, dict[str, Any]]:
  """(mean of per_image over valid rows, {"loss": sum, "count": n} (+ "<prefix>loss"))."""
  valid = valid.astype(jnp.float32)
  count = jnp.sum(valid)
  loss_sum = jnp.sum(per_image.astype(jnp.float32) * valid)
  metrics = {"loss": loss_sum, "count": count}
  if prefix:
    metrics[f"{prefix}loss"] = loss_sum
  return loss_sum / jnp.maximum(count, 1.0), metrics


def init_variables(model, image_size: int, seed: int) -> dict[str, Any]:
  from lvm_jax.downstream import network
  return network.init_network(model, image_size, seed)
