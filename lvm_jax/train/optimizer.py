"""The optimizer: warmup + cosine schedule, global-norm clipping, Adam/AdamW with float32 moments.

Weight decay applies to kernels (Dense and Conv weights) only: LayerNorm scales and biases,
all biases, relative-position bias tables and PReLU slopes are excluded (`decay_mask`).
Config fields (`config.optimizer`): name ("adam" | "adamw"), lr, b1, b2, eps, weight_decay,
warmup_steps, schedule ("cosine" | "constant"), end_lr_factor, grad_clip (0: none).
`frozen` (argument): top-level parameter subtrees (e.g. ("backbone",) for a downstream network
with a frozen encoder) whose updates are zero (`optax.set_to_zero`, no optimizer moments kept).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

DECAYED_LEAVES = ("kernel",)


def decay_mask(params):
  """True on the leaves that get weight decay: those named 'kernel'."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) in DECAYED_LEAVES, params)


def learning_rate_schedule(opt_config, num_steps: int) -> optax.Schedule:
  warmup = int(opt_config.warmup_steps)
  if opt_config.schedule == "constant":
    return optax.join_schedules([optax.linear_schedule(0.0, opt_config.lr, max(warmup, 1)),
                                 optax.constant_schedule(opt_config.lr)], [max(warmup, 1)]) \
        if warmup else optax.constant_schedule(opt_config.lr)
  if opt_config.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, opt_config.lr, max(warmup, 1), max(int(num_steps), warmup + 1),
        end_value=opt_config.lr * opt_config.end_lr_factor)
  raise ValueError(f"unknown schedule {opt_config.schedule!r}")


def frozen_labels(params, frozen) -> dict:
  """'frozen' on every leaf under a top-level key in `frozen`, 'trained' elsewhere."""
  return {k: jax.tree.map(lambda _, f=k in frozen: "frozen" if f else "trained", v)
          for k, v in params.items()}


def make_optimizer(opt_config, num_steps: int, frozen: tuple[str, ...] = ()
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer, schedule) for a config's `optimizer` section; `frozen` subtrees get no updates."""
  tx, schedule = _make_optimizer(opt_config, num_steps)
  if frozen:
    tx = optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()},
                               lambda params: frozen_labels(params, tuple(frozen)))
  return tx, schedule


def _make_optimizer(opt_config, num_steps: int) -> tuple[optax.GradientTransformation,
                                                         optax.Schedule]:
  schedule = learning_rate_schedule(opt_config, num_steps)
  parts = []
  if opt_config.grad_clip:
    parts.append(optax.clip_by_global_norm(opt_config.grad_clip))
  if opt_config.name == "adamw":
    parts.append(optax.adamw(schedule, opt_config.b1, opt_config.b2, opt_config.eps,
                             weight_decay=opt_config.weight_decay, mask=decay_mask,
                             mu_dtype=jnp.float32))
  elif opt_config.name == "adam":
    if opt_config.weight_decay:  # L2 added to the gradient (coupled), kernels only
      parts.append(optax.add_decayed_weights(opt_config.weight_decay, mask=decay_mask))
    parts.append(optax.adam(schedule, opt_config.b1, opt_config.b2, opt_config.eps,
                            mu_dtype=jnp.float32))
  else:
    raise ValueError(f"unknown optimizer {opt_config.name!r}")
  return optax.chain(*parts), schedule
