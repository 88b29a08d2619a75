"""Images per second of `lvm-jax ingest` on Galaxy Zoo 1 JPEGs, with 1 and 2 reader processes.

Run:
  python benchmarks/ingest_throughput.py                    # 600 images, 152 px stamps
  python benchmarks/ingest_throughput.py --n 2000 --workers 1,2,4 --stamp 0   # native 423 px

Reads the first N rows of ../shared/data/galaxy_zoo1_sdss/labels.csv (found through
`lvm_jax.shared_paths`), ingests them into a temporary folder (decode, checks, centre-crop and
resize, lzf-compressed HDF5 shards, rows/rejects tables, stratified splits) and reports the wall
time of the whole command and images/s, per worker count, against the 1-worker run. OpenCV and
BLAS are held to one thread so that one worker is one core.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_NUM_THREADS"):
  os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from lvm_jax import provenance, shared_paths  # noqa: E402
from lvm_jax.ingest import builder, catalogue  # noqa: E402


def _gz1() -> pathlib.Path:
  shared = shared_paths.shared_dir()
  folder = None if shared is None else shared / "data" / "galaxy_zoo1_sdss"
  if folder is None or not (folder / "labels.csv").is_file():
    sys.exit("../shared/data/galaxy_zoo1_sdss is absent: nothing to measure")
  return folder



def _installed(name: str) -> bool:
  import importlib.metadata as metadata
  try:
    metadata.version(name)
  except metadata.PackageNotFoundError:
    return False
  return True


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=600, help="images (default 600)")
  parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
  parser.add_argument("--stamp", type=int, default=152, help="stamp px; 0 keeps 423 px")
  parser.add_argument("--shard-size", type=int, default=256)
  args = parser.parse_args()
  import cv2
  cv2.setNumThreads(1)
  folder = _gz1()
  import importlib.metadata as metadata
  versions = {p: metadata.version(p) for p in ("numpy", "h5py", "pillow", "opencv-python-headless")
              if _installed(p)}
  print(f"device: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs "
        f"(load average {os.getloadavg()[0]:.1f}); python {platform.python_version()}, "
        f"{', '.join(f'{k} {v}' for k, v in versions.items())}, lvm-jax "
        f"{provenance.provenance()['lvm_jax_version']} ({provenance.git_sha()[:10]})")
  print(f"{args.n} Galaxy Zoo 1 JPEGs (423 px) -> {args.stamp or 423} px stamps, "
        f"shards of {args.shard_size}")
  baseline = None
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    labels = catalogue.write_head(folder / "labels.csv", args.n, tmp / "labels.csv")
    for workers in (int(w) for w in args.workers.split(",")):
      options = builder.IngestOptions(id_column="objid", label_column="class_name",
                                      stamp=args.stamp or None, shard_size=args.shard_size,
                                      workers=workers)
      start = time.perf_counter()
      summary = builder.ingest(folder, labels, tmp / f"out{workers}", options)
      seconds = time.perf_counter() - start
      rate = summary["stored"] / seconds
      baseline = baseline or rate
      print(f"workers {workers}: {summary['stored']} stored in {seconds:.1f} s = {rate:.1f} "
            f"images/s ({rate / baseline:.2f}x the first)")


if __name__ == "__main__":
  main()
