"""Wall time and peak memory of a HATS write and an LSDB crossmatch on a simulated export.

    python benchmarks/catalogue_throughput.py --n 50000 200000 --dim 768 \
        --workdir /tmp/catalogue_bench --workers 2 --memory-limit 1.5GiB

For each N: writes a simulated export of N rows (`lvm_jax.export.synthetic`: positions uniform on
the sky, standard normal D-dim float32 embeddings, 10,000-row part files; not timed), then times

1. `write_hats` of the export (hats-import on a local Dask cluster of `--workers` processes,
   margin 10 arcsec), and
2. `crossmatch` of a second catalogue (a Parquet file of N/2 rows: N/4 counterparts 0.1-0.9
   arcsec from exported galaxies, N/4 random positions) against it at 1 arcsec, converted to
   HATS on the same cluster, the matches with their embeddings written to Parquet.

Peak memory is the largest sum of the resident set sizes of this process and all its children
(the Dask workers), sampled every 0.1 s. The matches are checked: every counterpart found at
its planted separation. Results go to WORKDIR/catalogue_throughput.json and stdout (markdown).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import sys
import threading
import time

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq


class PeakRSS:
  """Samples the RSS of this process plus its children; `peak` in bytes since `reset()`."""

  def __init__(self, interval: float = 0.1):
    self.interval, self.peak, self._stop = interval, 0, threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _total(self) -> int:
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
      try:
        total += child.memory_info().rss
      except psutil.Error:
        pass
    return total

  def _run(self):
    while not self._stop.is_set():
      self.peak = max(self.peak, self._total())
      time.sleep(self.interval)

  def reset(self) -> None:
    self.peak = self._total()

  def stop(self) -> None:
    self._stop.set()
    self._thread.join()


def second_catalogue(export_dir: pathlib.Path, path: pathlib.Path, n: int, seed: int) -> dict:
  """N/4 counterparts of random exported galaxies and N/4 random positions, as Parquet."""
  from lvm_jax.export import read_embeddings, synthetic
  rng = np.random.default_rng(seed)
  t = read_embeddings(export_dir, ["id", "ra", "dec"])
  rows = rng.choice(t.num_rows, n // 4, replace=False)
  ra0, dec0 = t.column("ra").to_numpy()[rows], t.column("dec").to_numpy()[rows]
  sep = rng.uniform(0.1, 0.9, len(rows)) / 3600
  angle = rng.uniform(0, 2 * np.pi, len(rows))
  dec1 = np.clip(dec0 + sep * np.cos(angle), -90, 90)
  ra1 = (ra0 + sep * np.sin(angle) / np.cos(np.radians(dec0))) % 360
  ra2, dec2 = synthetic.sky_positions(rng, n // 4)
  names = [f"cp{i}" for i in range(len(rows))] + [f"rnd{i}" for i in range(n // 4)]
  table = pa.table({"name": names, "ra": np.r_[ra1, ra2], "dec": np.r_[dec1, dec2],
                    "mag": rng.uniform(16, 22, 2 * (n // 4))})
  pq.write_table(table, path)
  ids = t.column("id").to_numpy(zero_copy_only=False)[rows]
  return {f"cp{i}": ids[i] for i in range(len(rows))}


def run_one(n: int, args, meter: PeakRSS) -> dict:
  from lvm_jax.export import cluster, crossmatch, hats_catalogue, synthetic
  work = pathlib.Path(args.workdir) / f"n{n}"
  shutil.rmtree(work, ignore_errors=True)
  work.mkdir(parents=True)
  t = time.perf_counter()
  synthetic.write_synthetic_export(work / "export", n, dim=args.dim, seed=args.seed)
  truth = second_catalogue(work / "export", work / "second.parquet", n, args.seed + 1)
  prep = time.perf_counter() - t
  result = {"n": n, "dim": args.dim, "prepare_s": round(prep, 1),
            "export_bytes": sum(f.stat().st_size for f in (work / "export").rglob("*.parquet"))}
  with cluster.dask_client(workers=args.workers, memory_limit=args.memory_limit,
                           local_directory=str(work / "dask")) as client:
    meter.reset()
    t = time.perf_counter()
    summary = hats_catalogue.write_hats(work / "export", work / "hats", client=client)
    result["hats_s"] = round(time.perf_counter() - t, 1)
    result["hats_peak_rss_mib"] = round(meter.peak / 2**20)
    result["partitions"] = summary["partitions"]
    result["margin_rows"] = summary["margin_rows"]
    meter.reset()
    t = time.perf_counter()
    cm = crossmatch.crossmatch(work / "hats", work / "second.parquet", 1.0,
                               work / "matches.parquet", client=client, work_dir=work)
    result["crossmatch_s"] = round(time.perf_counter() - t, 1)
    result["crossmatch_peak_rss_mib"] = round(meter.peak / 2**20)
  matches = pq.read_table(work / "matches.parquet", columns=["name", "lvm_id"])
  got = dict(zip(matches.column("name").to_pylist(), matches.column("lvm_id").to_pylist()))
  found = sum(got.get(k) == v for k, v in truth.items())
  result.update(second_rows=2 * (n // 4), matches=cm["matches"], counterparts=len(truth),
                counterparts_found=found)
  if not args.keep:
    shutil.rmtree(work, ignore_errors=True)
  return result


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--n", type=int, nargs="+", default=[200_000])
  p.add_argument("--dim", type=int, default=768)
  p.add_argument("--workdir", default="runs/catalogue_bench")
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--memory-limit", default="1.5GiB")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--keep", action="store_true", help="keep the catalogues")
  args = p.parse_args(argv)
  import dask
  import hats
  import hats_import
  import lsdb
  env = {"host": platform.node(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
         "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
         "load_average_start": os.getloadavg(), "hats": hats.__version__,
         "hats_import": hats_import.__version__, "lsdb": lsdb.__version__,
         "dask": dask.__version__, "workers": args.workers, "memory_limit": args.memory_limit,
         "command": " ".join(sys.argv)}
  meter = PeakRSS()
  results = []
  for n in args.n:
    results.append(run_one(n, args, meter))
    print(json.dumps(results[-1]), flush=True)
  meter.stop()
  env["load_average_end"] = os.getloadavg()
  out = pathlib.Path(args.workdir) / "catalogue_throughput.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({"env": env, "results": results}, indent=1))
  print("| rows | D | HATS write (s) | peak RSS (MiB) | crossmatch (s) | peak RSS (MiB) | "
        "matches | counterparts found |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for r in results:
    print(f"| {r['n']:,} | {r['dim']} | {r['hats_s']} | {r['hats_peak_rss_mib']:,} | "
          f"{r['crossmatch_s']} | {r['crossmatch_peak_rss_mib']:,} | {r['matches']:,} | "
          f"{r['counterparts_found']:,} / {r['counterparts']:,} |")
  print(json.dumps(env))
  return 0


if __name__ == "__main__":
  sys.exit(main())
