"""Images per second per CPU core of the pretraining input pipeline, and of pre-cropped ArrayRecord.

Run:
  python benchmarks/data_throughput.py                 # 1024 stamps, batch 64
  python benchmarks/data_throughput.py --records 256 --profile

Input data is made here: 152-px g, r, z stamps in nanomaggies written to a temporary ssl HDF5
file, cut from the real DESI cutouts under ../shared/data when present (each copy with its own
noise and flip), else exponential blobs with noise. Measured:
  1. full pipeline: read HDF5 -> validate -> shift -> paper adaptive crop + resize to 128 ->
     asinh -> dihedral -> batch, with the skimage resize and with `pipeline.fast_resize`;
  2. the same with 2 Grain worker processes (total, and per core);
  3. pre-cropped ArrayRecord (written once with the paper crop) -> shift -> asinh -> dihedral ->
     batch, and the raw record read;
  4. the largest deviation of `fast_resize` from the skimage path on the real cutouts;
  5. with --profile, where the time of (1) goes (cProfile, by cumulative and own time).
BLAS and OpenCV are held to one thread so that one process is one core.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ.setdefault(_var, "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pathlib  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lvm_jax import shared_paths  # noqa: E402
from lvm_jax.data import arrayrecord, pipeline  # noqa: E402
from lvm_jax.data.fits_cutout import FitsCutoutSource  # noqa: E402
from lvm_jax.data.hdf5_source import SslLegacySurveySource, write_ssl_hdf5  # noqa: E402
from lvm_jax.data.preprocess import Preprocessing, centre_box, crop  # noqa: E402

STAMP = 152
PAPER_ASINH = Preprocessing(mode="paper", out_size=128, normalisation="asinh")


def real_cutouts() -> list[np.ndarray]:
  d = shared_paths.desi_cutouts_dir()
  if d is None or not d.is_dir():
    return []
  return [r["image"] for r in FitsCutoutSource(d)]


def blob(rng: np.random.Generator) -> np.ndarray:
  y, x = np.mgrid[:STAMP, :STAMP] - (STAMP - 1) / 2
  q, theta, r_e = rng.uniform(0.3, 1), rng.uniform(0, np.pi), rng.uniform(3, 20)
  u = x * np.cos(theta) + y * np.sin(theta)
  v = (-x * np.sin(theta) + y * np.cos(theta)) / q
  profile = np.exp(-np.hypot(u, v) / r_e)
  return (profile[..., None] * rng.uniform(0.2, 2, 3)).astype(np.float32)


def make_stamps(n: int, seed: int = 0) -> tuple[np.ndarray, str]:
  """(n, 3, 152, 152) float32 stamps and a description of where they came from."""
  rng = np.random.default_rng(seed)
  real = [crop(c, centre_box(c.shape, STAMP)) for c in real_cutouts() if min(c.shape[:2]) >= STAMP]
  stamps = np.empty((n, STAMP, STAMP, 3), np.float32)
  for i in range(n):
    base = real[i % len(real)] if real else blob(rng)
    stamps[i] = np.rot90(base, rng.integers(4)) + rng.normal(0, 0.003, base.shape)
  what = (f"{len(real)} real DESI cutouts (centre 152 px) + noise" if real
          else "exponential blobs + noise")
  return np.ascontiguousarray(np.moveaxis(stamps, -1, 1)), what


def write_source(directory: pathlib.Path, n: int) -> tuple[SslLegacySurveySource, str]:
  stamps, what = make_stamps(n)
  cat = {"ra": np.linspace(0, 1, n), "dec": np.zeros(n), "release": np.full(n, 9010),
         "brickid": np.ones(n, np.int64), "objid": np.arange(n)}
  path = write_ssl_hdf5(directory / "stamps.h5", stamps, cat)
  return SslLegacySurveySource(path, columns=()), what  # pretraining reads no catalogue columns


def images_per_second(pipe: pipeline.PretrainingPipeline, n_steps: int, warmup: int = 1
                      ) -> tuple[float, float]:
  """(images per wall-clock second, images per CPU second of this process)."""
  it = pipe.iterate(0)
  for _ in range(warmup):
    next(it)
  start, cpu = time.perf_counter(), time.process_time()
  for _ in range(n_steps):
    next(it)
  elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
  if hasattr(it, "close"):
    it.close()
  n = n_steps * pipe.local_batch_size
  return n / elapsed, n / cpu


def max_fast_resize_deviation() -> str:
  cutouts = real_cutouts()
  if not cutouts:
    return "no real cutouts found (../shared/data/desi_dr9_south absent)"
  worst, worst_rel = 0.0, 0.0
  for c in cutouts:
    for image in (c, crop(c, centre_box(c.shape, STAMP))):
      for prep in (Preprocessing(mode="paper", out_size=128), Preprocessing(mode="resize",
                                                                             out_size=128)):
        a, _ = pipeline.apply_preprocessing(prep, image, fast=False)
        b, _ = pipeline.apply_preprocessing(prep, image, fast=True)
        worst = max(worst, float(np.abs(a - b).max()))
        worst_rel = max(worst_rel, float(np.abs(a - b).max() / np.abs(a).max()))
  return (f"{len(cutouts)} real cutouts x (256 px, 152 px centre) x (paper, resize) to 128 px: "
          f"max |fast - skimage| = {worst:.3g} nanomaggies ({worst_rel:.2g} of the image max)")


def profile(pipe: pipeline.PretrainingPipeline, n_steps: int) -> str:
  pipe[0]
  profiler = cProfile.Profile()
  profiler.enable()
  for k in range(1, n_steps + 1):
    pipe[k]
  profiler.disable()
  out = io.StringIO()
  stats = pstats.Stats(profiler, stream=out)
  stats.sort_stats("tottime").print_stats(14)
  return "\n".join(line for line in out.getvalue().splitlines() if line.strip())


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--records", type=int, default=1024)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--profile", action="store_true")
  args = parser.parse_args(argv)
  cores = len(os.sched_getaffinity(0))
  steps = max(1, args.records // args.batch - 1)
  print(f"command: python {' '.join(sys.argv)}")
  print(f"cores: {cores} (os.cpu_count() {os.cpu_count()}), load average "
        f"{os.getloadavg()[0]:.1f}; batch {args.batch}; {steps} timed batches after 1 warm-up")
  common = {"global_batch_size": args.batch, "seed": 0, "process_index": 0, "process_count": 1}
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    source, what = write_source(tmp, args.records)
    print(f"data: {args.records} stamps of {STAMP} px ({what}), HDF5 in {tmp}")
    rows = []
    for fast in (False, True):
      pipe = pipeline.make_pipeline(source, preprocessing=PAPER_ASINH, fast_resize=fast, **common)
      rows.append((f"full pipeline, 1 process, {'fast' if fast else 'skimage'} resize",
                   *images_per_second(pipe, steps), 1))
    pipe = pipeline.make_pipeline(source, preprocessing=PAPER_ASINH, worker_count=args.workers,
                                  **common)
    rows.append((f"full pipeline, {args.workers} Grain workers, fast resize",
                 images_per_second(pipe, steps, warmup=2)[0], None, min(args.workers, cores)))

    start, cpu = time.perf_counter(), time.process_time()
    path = arrayrecord.write_precropped(source, Preprocessing(mode="paper", out_size=128),
                                        tmp / "tfds", name="bench")
    ingest = (args.records / (time.perf_counter() - start),
              args.records / (time.process_time() - cpu))
    stored = arrayrecord.PrecroppedSource(path, reader="grain")
    pipe = pipeline.make_pipeline(stored, preprocessing=stored.passthrough_preprocessing("asinh"),
                                  **common)
    rows.append(("pre-cropped ArrayRecord pipeline (shift, asinh, dihedral)",
                 *images_per_second(pipe, steps), 1))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(len(stored)):
      stored[i]
    rows.append(("pre-cropped ArrayRecord raw read + decode",
                 len(stored) / (time.perf_counter() - start),
                 len(stored) / (time.process_time() - cpu), 1))
    rows.append(("pre-cropped ArrayRecord ingest (paper crop, skimage-equal resize, write)",
                 *ingest, 1))

    print("\nimg/s: wall clock; img/CPU-s: per second of this process's CPU time (one core; "
          "honest when other jobs share the machine)")
    print(f"{'what':72s} {'img/s':>7s} {'cores':>5s} {'img/s/core':>10s} {'img/CPU-s':>9s}")
    for name, rate, cpu_rate, used in rows:
      cpu_text = "" if cpu_rate is None else f"{cpu_rate:9.0f}"
      print(f"{name:72s} {rate:7.0f} {used:5d} {rate / used:10.0f} {cpu_text}")
    print("\n" + max_fast_resize_deviation())
    if args.profile:
      pipe = pipeline.make_pipeline(source, preprocessing=PAPER_ASINH, **common)
      print("\nprofile of the full pipeline (fast resize), by own time:")
      print(profile(pipe, steps))


if __name__ == "__main__":
  main()
