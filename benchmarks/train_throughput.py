"""Training throughput (img/s) and MFU of the LVM train step, options side by side.

    python benchmarks/train_throughput.py --preset lvm_100m --batch 256 --dtype float32,bfloat16 \
        --remat none,full --steps 20

Synthetic batches by default: the import path is jax, flax, optax and numpy only (the GPU
machines have no grain / ml-collections / astropy; `lvm_jax.models` imports ml_collections only
inside `preset()`). `--data GLOB` feeds the real pipeline instead (needs the data extras).

MFU = analytic FLOPs per image x img/s / (peak FLOP/s per device x devices), both from
`lvm_jax.models.cost` (48.2 GFLOP per image per training step for the 100M models at 128 px;
XLA's own count is printed beside it as `xla_gflop_img`).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import types

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _opt_config(lr=1e-4):
  return types.SimpleNamespace(name="adam", lr=lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                               warmup_steps=10, schedule="cosine", end_lr_factor=0.01,
                               grad_clip=1.0)


def run_one(preset: str, batch: int, dtype: str, remat: str, steps: int, warmup: int,
            grad_accum: int, data_glob: str | None) -> dict:
  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding, PartitionSpec as P

  from lvm_jax import models
  from lvm_jax.models import initialisation
  from lvm_jax.train import optimizer, step as step_lib, objectives

  fields = dict(models.PRESETS[preset], dtype=dtype)
  model = models.build(fields)
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  rep, data_sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  abstract = initialisation.abstract_params(model)
  param_sh = jax.tree.map(lambda _: rep, abstract)
  params = initialisation.init_params(model, 0, shardings=param_sh)
  tx, schedule = optimizer.make_optimizer(_opt_config(), 1000)
  opt_sh = jax.tree.map(lambda _: rep, jax.eval_shape(tx.init, abstract))
  state = step_lib.create_state(params, tx, param_sh, opt_sh, mesh, ema=False)
  task = objectives.ReconstructionTask(mask_fraction=0.5)
  train_step = step_lib.make_train_step(model, task, tx, schedule, seed=0, grad_accum=grad_accum,
                                        remat=remat, batch_sharding=data_sh)
  s = fields["img_size"]
  abstract_batch = {"image": jax.ShapeDtypeStruct((batch, s, s, 3), jnp.float32, sharding=data_sh),
                    "valid": jax.ShapeDtypeStruct((batch,), jnp.bool_, sharding=data_sh)}
  t0 = time.perf_counter()
  compiled = step_lib.compile_train_step(train_step, state, abstract_batch, mesh)
  compile_s = time.perf_counter() - t0
  memory = step_lib.memory_summary(compiled)
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    xla_flops = float(cost.get("flops", float("nan")))
  except Exception:
    xla_flops = float("nan")

  if data_glob:
    batches = _real_batches(data_glob, batch, s, mesh)
  else:
    rng = np.random.default_rng(0)
    host = {"image": rng.standard_normal((batch, s, s, 3)).astype(np.float32),
            "valid": np.ones(batch, bool)}
    fixed = {k: jax.device_put(v, data_sh) for k, v in host.items()}
    batches = iter(lambda: fixed, None)
  for _ in range(warmup):
    state, metrics = compiled(state, next(batches))
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, next(batches))
  jax.block_until_ready(metrics)
  dt = (time.perf_counter() - t0) / steps
  img_s = batch / dt
  from lvm_jax.models import cost as cost_lib
  flops_img, source = cost_lib.train_step_flops(fields), "analytic"
  kind = jax.devices()[0].device_kind
  peak = cost_lib.peak_flops(kind)
  mfu = (flops_img * img_s / (peak * jax.device_count())) if peak else None
  return {"preset": preset, "batch": batch, "dtype": dtype, "remat": remat,
          "grad_accum": grad_accum, "compile_s": compile_s, "step_ms": dt * 1e3, "img_s": img_s,
          "gflop_img": flops_img / 1e9, "flop_source": source,
          "xla_gflop_img": xla_flops / batch / 1e9, "mfu": mfu, "device": kind,
          "devices": jax.device_count(), "temp_gb": memory.get("temp_size_in_bytes", 0) / 1e9,
          "loss": float(metrics["loss"])}


def _real_batches(glob_pattern, batch, size, mesh):
  from lvm_jax.data import pipeline as pipeline_lib
  from lvm_jax.data.hdf5_source import SslLegacySurveySource
  from lvm_jax.train import data as data_lib
  source = SslLegacySurveySource(data_lib.survey_paths(glob_pattern), columns=())
  prep = pipeline_lib.Preprocessing(mode="paper", out_size=size)
  pipe = pipeline_lib.make_pipeline(source, preprocessing=prep, global_batch_size=batch, seed=0,
                                    worker_count=4)
  it = pipeline_lib.GlobalBatchIterator(pipe, mesh, data_axes=("data",), prefetch=2)
  return ({k: b[k] for k in ("image", "valid")} for b in it)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  from lvm_jax import models
  p.add_argument("--preset", default="tiny", choices=sorted(models.PRESETS))
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--dtype", default="float32", help="comma-separated: float32,bfloat16")
  p.add_argument("--remat", default="none", help="comma-separated: none,full,dots,dots_no_batch")
  p.add_argument("--grad_accum", type=int, default=1)
  p.add_argument("--data", default=None, help="HDF5 glob: use the real pipeline")
  args = p.parse_args(argv)
  head = ("preset", "batch", "dtype", "remat", "compile_s", "step_ms", "img_s", "gflop_img",
          "mfu", "temp_gb")
  print(" | ".join(head) + " | device", flush=True)
  for d in args.dtype.split(","):
    for rm in args.remat.split(","):
      r = run_one(args.preset, args.batch, d, rm, args.steps, args.warmup, args.grad_accum,
                  args.data)
      mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
      print(f"{r['preset']} | {r['batch']} | {r['dtype']} | {r['remat']} | {r['compile_s']:.1f} | "
            f"{r['step_ms']:.1f} | {r['img_s']:.2f} | {r['gflop_img']:.2f} ({r['flop_source']}; "
            f"xla {r['xla_gflop_img']:.2f}) | {mfu} | {r['temp_gb']:.3f} | "
            f"{r['device']} x{r['devices']}", flush=True)
  if not args.data:
    heavy = [m for m in ("ml_collections", "grain", "astropy") if m in sys.modules]
    assert not heavy, f"synthetic path imported {heavy}"
  return 0


if __name__ == "__main__":
  sys.exit(main())
