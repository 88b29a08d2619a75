"""Images per second of the embedding export: end to end, and the encoder alone.

Run:
  python benchmarks/export_throughput.py --preset tiny                     # both measurements
  python benchmarks/export_throughput.py --preset lvm_100m --batch 8 --steps 3 --model-only
  python benchmarks/export_throughput.py --preset tiny --preprocessing paper --fast-resize

1. model only: `SUNet.encode` + mean embedding, jitted over all devices (batch split over the
   `data` axis, parameters replicated), `--steps` timed passes after one warm-up. This path
   imports only jax, flax and numpy (the GPU machine has no grain, ml-collections or astropy):
   the model is `lvm_jax.models.build(PRESETS[name])`; ml_collections is imported only by
   `lvm_jax.models.preset()`, which this path does not call.
2. end to end (`lvm_jax.export.export_survey`): read ssl HDF5 (152-px stamps written here,
   exponential blobs with noise) -> validate -> preprocess as the checkpoint records -> encode
   -> write Parquet, with a warm compilation cache (a warm-up export first); reported for the
   read-to-write loop, and with the start-up (checkpoint restore, tracing) included.

Where the expensive parts run: the network runs on the device; the paper's preprocessing
(adaptive crop from an Otsu threshold + contours, then the anti-aliased resize) is host work per
image, and with a pre-cropped ArrayRecord source (`lvm_jax.data.arrayrecord`) it is done once at
ingest, leaving the export to read (S, S, 3) float32 stamps. `--preprocessing resize` measures
a whole-stamp resize only; `paper` adds the crop.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ.setdefault(_var, "1")  # host threads are the export's workers, not BLAS's

import numpy as np  # noqa: E402

def model_only(preset: str, batch: int, steps: int, dtype: str) -> dict:
  """Encoder images/s on all devices; imports jax, flax, numpy only."""
  import jax
  from jax.sharding import NamedSharding, PartitionSpec
  from lvm_jax import models  # imports ml_collections only inside models.preset()
  fields = dict(models.PRESETS[preset], dtype=dtype)
  module = models.build(fields)
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  params = jax.device_put(models.init_params(module, 0),
                          NamedSharding(mesh, PartitionSpec()))
  data = NamedSharding(mesh, PartitionSpec("data"))
  size = fields["img_size"]
  images = jax.device_put(
      np.random.default_rng(0).normal(0, 0.1, (batch, size, size, 3)).astype(np.float32), data)
  encode = jax.jit(lambda p, x: module.apply({"params": p}, x, method="encode")["embedding"],
                   out_shardings=data)
  t = time.perf_counter()
  encode(params, images).block_until_ready()
  compile_s = time.perf_counter() - t
  t = time.perf_counter()
  for _ in range(steps):
    out = encode(params, images)
  out.block_until_ready()
  seconds = time.perf_counter() - t
  return {"preset": preset, "batch": batch, "dtype": dtype, "devices": jax.device_count(),
          "device": jax.devices()[0].device_kind, "compile_s": round(compile_s, 1),
          "images_per_second": round(steps * batch / seconds, 2)}


def end_to_end(preset: str, batch: int, records: int, dtype: str, preprocessing: str,
               fast_resize: bool, workers: int) -> dict:
  """export_survey images/s on a temporary survey, compilation cache warm."""
  import jax
  from lvm_jax import checkpoint, models
  from lvm_jax.data.hdf5_source import write_ssl_hdf5
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.export import ExportSettings, export_survey
  tmp = pathlib.Path(tempfile.mkdtemp(prefix="export_bench_"))
  jax.config.update("jax_compilation_cache_dir", str(tmp / "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  config = models.preset(preset)
  module = models.build(config)
  checkpoint.save(tmp / "ckpt", 0, params=models.init_params(module, 0),
                  config={"model": config.to_dict()},
                  meta={"preprocessing": Preprocessing(mode=preprocessing,
                                                       out_size=config.img_size).to_dict(),
                        "fast_resize": fast_resize})
  rng = np.random.default_rng(0)
  y, x = np.mgrid[:152, :152] - 75.5
  scale = rng.uniform(3, 12, (records, 1, 1, 1))
  images = (rng.uniform(0.05, 2, (records, 3, 1, 1)) * np.exp(-np.hypot(x, y) / scale)
            + rng.normal(0, 0.005, (records, 3, 152, 152))).astype(np.float32)
  catalogue = {"release": np.full(records, 9010), "brickid": np.zeros(records, int),
               "objid": np.arange(records), "ra": rng.uniform(0, 1, records),
               "dec": rng.uniform(0, 1, records)}
  write_ssl_hdf5(tmp / "survey" / "s.h5", images, catalogue)
  settings = ExportSettings(batch=batch, chunk_size=max(batch * 4, 256), compute_dtype=dtype,
                            workers=workers)
  export_survey(tmp / "ckpt", tmp / "survey" / "s.h5", tmp / "warm", settings, progress=False)
  summary = export_survey(tmp / "ckpt", tmp / "survey" / "s.h5", tmp / "out", settings,
                          progress=True)
  return {"preset": preset, "batch": batch, "records": records, "dtype": dtype,
          "preprocessing": preprocessing, "fast_resize": fast_resize, "workers": workers,
          "seconds": summary["seconds_this_run"],
          "images_per_second_with_startup": summary["images_per_second_this_run"],
          "images_per_second": summary["images_per_second_embedding"]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="tiny", choices=("lvm_100m", "sunet_100m", "tiny"))
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=5, help="timed model-only passes")
  parser.add_argument("--records", type=int, default=512, help="end-to-end survey size")
  parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16"),
                      help="compute dtype (default: float32 on CPU, bfloat16 elsewhere)")
  parser.add_argument("--preprocessing", default="resize", choices=("resize", "paper"))
  parser.add_argument("--fast-resize", action="store_true")
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--model-only", action="store_true")
  args = parser.parse_args()
  import jax
  dtype = args.dtype or ("float32" if jax.default_backend() == "cpu" else "bfloat16")
  print("model only:", model_only(args.preset, args.batch, args.steps, dtype), flush=True)
  if not args.model_only:
    print("end to end:", end_to_end(args.preset, args.batch, args.records, dtype,
                                    args.preprocessing, args.fast_resize, args.workers))


if __name__ == "__main__":
  main()
