"""Forward and training-step throughput of the LVM on whatever device JAX sees.

    python benchmarks/model_throughput.py --preset lvm_100m --batch 256 --dtype bfloat16
    python benchmarks/model_throughput.py --preset tiny --batch 8 --dtype float32   # CPU

Prints, per dtype: compile time, forward img/s, train-step img/s (forward, backward, Adam
update, MSE loss, donated state) and MFU from the analytic cost (`lvm_jax.models.cost`: 16.07
GFLOP forward and 48.2 per training step per image for the 100M model at 128 px) against the
device's dense bf16 peak. Synthetic batches (random positive images); needs only jax, flax,
optax and numpy (what the GPU machines have).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from lvm_jax import models  # noqa: E402
from lvm_jax.models import cost  # noqa: E402

def _time(fn, args, steps: int) -> float:
  """Seconds per call of `fn(*args)` -> new args (state threading), after one warm-up call."""
  out = fn(*args)
  jax.block_until_ready(out)
  start = time.perf_counter()
  for _ in range(steps):
    out = fn(*out) if isinstance(out, tuple) and len(out) == len(args) else fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / steps


def bench(preset: str, batch: int, dtype: str, steps: int, seed: int = 0) -> dict:
  fields = dict(models.PRESETS[preset], dtype=dtype)
  module = models.build(fields)
  params = models.init_params(module, seed)
  size = fields["img_size"]
  images = jnp.asarray(np.abs(np.random.default_rng(seed).standard_normal(
      (batch, size, size, 3), np.float32)) * 0.05)
  tx = optax.adam(1e-4)
  opt_state = tx.init(params)

  def forward(p, x):
    return module.apply({"params": p}, x, train=False)["reconstruction"]

  def train_step(p, o, x):
    def loss_fn(p):
      recon = module.apply({"params": p}, x, train=False)["reconstruction"]
      return jnp.mean((recon - x) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, x

  t0 = time.perf_counter()
  fwd = jax.jit(forward).lower(params, images).compile()
  fwd_compile = time.perf_counter() - t0
  t0 = time.perf_counter()
  step = jax.jit(train_step, donate_argnums=(0, 1)).lower(params, opt_state, images).compile()
  step_compile = time.perf_counter() - t0
  memory = step.memory_analysis()

  fwd_s = _time(fwd, (params, images), steps)
  step_s = _time(step, (params, opt_state, images), steps)
  device = jax.devices()[0]
  peak = cost.peak_flops(device.device_kind)
  fwd_ips, step_ips = batch / fwd_s, batch / step_s
  result = {
      "device": device.device_kind, "platform": device.platform, "preset": preset,
      "batch": batch, "dtype": dtype, "steps": steps,
      "compile_s": {"forward": round(fwd_compile, 1), "train_step": round(step_compile, 1)},
      "forward_img_s": round(fwd_ips, 2), "train_img_s": round(step_ips, 2),
      "gflop_per_img": {"forward": round(cost.forward_flops(fields) / 1e9, 2),
                        "train_step": round(cost.train_step_flops(fields) / 1e9, 2)},
  }
  if peak:
    result["mfu_forward"] = round(fwd_ips * cost.forward_flops(fields) / peak, 3)
    result["mfu_train"] = round(step_ips * cost.train_step_flops(fields) / peak, 3)
  if memory is not None:
    result["train_temp_gib"] = round(getattr(memory, "temp_size_in_bytes", 0) / 2 ** 30, 2)
  return result


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="tiny", choices=sorted(models.PRESETS))
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--dtype", default="float32",
                      help="comma-separated compute dtypes, e.g. float32,bfloat16")
  parser.add_argument("--steps", type=int, default=5)
  args = parser.parse_args(argv)
  print(f"jax {jax.__version__}, devices: {jax.devices()}")
  rows = [bench(args.preset, args.batch, d, args.steps) for d in args.dtype.split(",")]
  for r in rows:
    print(json.dumps(r))
  print("\n| device | preset | batch | dtype | compile fwd/step (s) | forward img/s | "
        f"train img/s | MFU train |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['device']} | {r['preset']} | {r['batch']} | {r['dtype']} | "
          f"{r['compile_s']['forward']}/{r['compile_s']['train_step']} | {r['forward_img_s']} | "
          f"{r['train_img_s']} | {r.get('mfu_train', 'n/a')} |")


if __name__ == "__main__":
  main()
