"""The train state and the jitted train step (no ml_collections import: the benchmark uses it).

State: a dict pytree {"step": int32 (), "params", "opt_state", "model_state" (mutable
collections, e.g. batch_stats; {} for pretraining), "ema_params" (only with EMA)}.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

REMAT_POLICIES = {
    "none": None,
    "full": "full",  # save nothing: recompute the whole forward in the backward pass
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def abstract_like(tree):
  """ShapeDtypeStructs (with shardings) of a tree of arrays."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                     sharding=getattr(x, "sharding", None)), tree)


def create_state(params, tx: optax.GradientTransformation, param_shardings, opt_shardings,
                 mesh, *, ema: bool, model_state=None) -> dict[str, Any]:
  """The initial state, every leaf created already sharded (`jit(..., out_shardings=...)`)."""
  rep = NamedSharding(mesh, P())
  state = {"step": jax.device_put(jnp.zeros((), jnp.int32), rep),
           "params": params,
           "opt_state": jax.jit(tx.init, out_shardings=opt_shardings)(params),
           "model_state": model_state or {}}
  if ema:
    state["ema_params"] = jax.jit(lambda p: jax.tree.map(jnp.copy, p),
                                  out_shardings=param_shardings)(params)
  return state


def state_shardings(state) -> Any:
  return jax.tree.map(lambda x: x.sharding, state)


def _microbatches(batch, k: int, batch_sharding):
  """(B, ...) -> (k, B / k, ...): microbatch j takes rows j, j + k, ... (spread over devices)."""
  def split(x):
    y = x.reshape(x.shape[0] // k, k, *x.shape[1:])
    y = jnp.swapaxes(y, 0, 1)
    if batch_sharding is not None:
      spec = P(None, *batch_sharding.spec)
      y = jax.lax.with_sharding_constraint(y, NamedSharding(batch_sharding.mesh, spec))
    return y
  return jax.tree.map(split, batch)


def make_train_step(model, task, tx: optax.GradientTransformation, schedule: Callable, *,
                    seed: int, grad_accum: int = 1, ema_decay: float = 0.0, remat: str = "none",
                    batch_sharding: NamedSharding | None = None) -> Callable:
  """train_step(state, batch) -> (state, metrics); batch holds `task.batch_keys`.

  Randomness (input degradation, dropout) is `fold_in(key(seed), step)`, so a resumed run and
  any device layout see the same draws. metrics: loss (mean over valid rows), count,
  grad_norm (before clipping), param_norm, lr, and any further entries of the task's metrics
  (as the task's sums).
  """
  if remat not in REMAT_POLICIES:
    raise ValueError(f"remat must be one of {sorted(REMAT_POLICIES)}, got {remat!r}")

  def loss_for(params, model_state, batch, rng):
    return task.loss_fn(model, {"params": params, **model_state}, batch, rng, train=True)

  policy = REMAT_POLICIES[remat]
  if policy == "full":
    loss_for = jax.checkpoint(loss_for)
  elif policy is not None:
    loss_for = jax.checkpoint(loss_for, policy=policy)
  grad_fn = jax.value_and_grad(loss_for, has_aux=True)

  def train_step(state, batch):
    params, model_state = state["params"], state["model_state"]
    rng = jax.random.fold_in(jax.random.key(seed), state["step"])
    valid = batch["valid"].astype(jnp.float32)
    total = jnp.maximum(jnp.sum(valid), 1.0)
    if grad_accum == 1:
      (_, (metrics, new_model_state)), grads = grad_fn(params, model_state, batch, rng)
    else:
      micro = _microbatches(batch, grad_accum, batch_sharding)
      zeros = jax.tree.map(jnp.zeros_like, params)

      def body(carry, xs):
        grads_acc, sums, ms = carry
        mb, i = xs
        (_, (m, new_ms)), g = grad_fn(params, ms, mb, jax.random.fold_in(rng, i))
        weight = jnp.sum(mb["valid"].astype(jnp.float32)) / total
        grads_acc = jax.tree.map(lambda a, b: a + weight * b, grads_acc, g)
        sums = jax.tree.map(jnp.add, sums, m)
        return (grads_acc, sums, new_ms or ms), None

      first_mb = jax.tree.map(lambda x: x[0], micro)
      first = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(
          loss_for, params, model_state, first_mb, rng)[1][0])
      (grads, metrics, new_model_state), _ = jax.lax.scan(
          body, (zeros, first, model_state), (micro, jnp.arange(grad_accum)))
    updates, opt_state = tx.update(grads, state["opt_state"], params)
    params = optax.apply_updates(params, updates)
    new_state = dict(state, step=state["step"] + 1, params=params, opt_state=opt_state,
                     model_state=new_model_state if new_model_state else model_state)
    if "ema_params" in state:
      new_state["ema_params"] = jax.tree.map(
          lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, state["ema_params"], params)
    n_images = jnp.maximum(metrics["count"], 1.0)
    out = {"loss": metrics["loss"] / n_images,
           "count": metrics["count"], "grad_norm": optax.tree.norm(grads),
           "param_norm": optax.tree.norm(params), "lr": schedule(state["step"])}
    # A task's further metrics (sums over images, e.g. per-task losses of a multitask run, the
    # descriptor term of pretraining) pass through as means over the step's images.
    out.update({k: v / n_images for k, v in metrics.items() if k not in out})
    return new_state, out

  return train_step


def compile_train_step(train_step, state, batch_abstract, mesh) -> jax.stages.Compiled:
  """Ahead-of-time compiled step with explicit in/out shardings and the state donated."""
  shardings = state_shardings(state)
  rep = NamedSharding(mesh, P())
  batch_shardings = jax.tree.map(lambda x: x.sharding, batch_abstract)
  jitted = jax.jit(train_step, in_shardings=(shardings, batch_shardings),
                   out_shardings=(shardings, rep), donate_argnums=(0,))
  return jitted.lower(abstract_like(state), batch_abstract).compile()


def memory_summary(compiled) -> dict[str, int]:
  """Bytes from `compiled.memory_analysis()` (absent fields omitted; {} where unsupported)."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # some backends do not implement it
    return {}
  if m is None:
    return {}
  out = {}
  for name in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
               "alias_size_in_bytes", "generated_code_size_in_bytes"):
    v = getattr(m, name, None)
    if v is not None:
      out[name] = int(v)
  return out


