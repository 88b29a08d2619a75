"""Diagnostic: can the SUNet decoder fit images from the bottleneck alone (skips zeroed)?

    python experiments/bottleneck_overfit.py --lr 1e-3 --lr 1e-4 \
        --config pretrain:tiny --set data.files='/tmp/tiny_survey/*.h5'

Fits one fixed batch of held-out images (the config's preprocessing) with Adam for `--steps`
steps through `SUNet(..., skip_keep=0)` from a fresh initialisation, once per learning rate, and
prints the MSE against two constant predictions (all zeros, the batch's mean image) and the
output's spread over images (0: the output no longer depends on the image).
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="pretrain:tiny")
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  parser.add_argument("--lr", action="append", type=float, help="repeatable (default 1e-3, 1e-4)")
  parser.add_argument("--steps", type=int, default=150)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)

  import jax
  import jax.numpy as jnp
  import optax

  from lvm_jax import models
  from lvm_jax import config as config_lib
  from lvm_jax.train import data as data_lib

  config = config_lib.apply_overrides(config_lib.load_config(args.config), args.set)
  model = models.build(config.model)
  _, val = data_lib.make_sources(config.data)
  x = jnp.asarray(data_lib.load_eval_set(config.data, val, int(config.model.img_size),
                                         limit=args.batch)["image"])
  keep = jnp.zeros(len(x))
  print(f"{len(x)} held-out images {tuple(x.shape[1:])}, device {jax.devices()[0].device_kind}; "
        f"MSE of all zeros {float(jnp.mean(x ** 2)):.4f}, "
        f"of the mean image {float(jnp.mean((x - x.mean(0)) ** 2)):.4f}")

  def loss(params):
    out = model.apply({"params": params}, x, skip_keep=keep)["reconstruction"]
    return jnp.mean(jnp.square(out - x)), out

  for lr in args.lr or [1e-3, 1e-4]:
    tx = optax.adam(lr)

    @jax.jit
    def step(params, opt_state):
      (value, _), grads = jax.value_and_grad(loss, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, value

    params = models.init_params(model, args.seed)
    opt_state = tx.init(params)
    t0 = time.time()
    for _ in range(args.steps):
      params, opt_state, _ = step(params, opt_state)
    value, out = jax.jit(loss)(params)
    print(f"lr {lr:g}: MSE after {args.steps} steps {float(value):.4f}, output std over images "
          f"(median pixel) {float(jnp.median(out.std(0))):.2e}, {time.time() - t0:.0f} s")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
