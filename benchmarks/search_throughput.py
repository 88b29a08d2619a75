"""Queries per second of exact blocked JAX k-NN (`cosine_knn`) vs the faiss IVF index (`IVFIndex`).

Run:
  nice -n 5 python benchmarks/search_throughput.py                          # N = 100k and 1M
  python benchmarks/search_throughput.py --sizes 100000 --nprobe 1,8,32 --json out.json

Needs jax, numpy and faiss-cpu (`pip install 'lvm-jax[ann]'`); `--json` adds provenance.

Data: synthetic, not survey embeddings: a mixture of `--clusters` Gaussians (sigma `--spread`)
in `--latent` (32) dimensions, mapped linearly to `--dim` (768, the `lvm_100m` embedding width)
plus `--noise` per dimension, float32 (a low intrinsic dimension, as learnt embeddings have;
well separated clusters in 768-d make IVF trivially exact at nprobe=1). Queries are further
draws from the same distribution (not database rows). Everything runs in one process:

- exact: `cosine_knn(normalised=True)` on the default JAX device, `--exact-queries` queries,
  timed on a second call after a warm-up that compiles (each call pads the database into
  blocks and copies it to the device, included in the time: that is what a search costs).
- IVF: `IVFIndex.build` (default nlist = round(4 sqrt(N)), k-means on min(N, 40 nlist) rows,
  seed 0) timed as "build"; then for each `--nprobe`, `--queries` queries in one call; recall@10
  is against the exact answer for the first `--exact-queries` queries.

Memory: the database is N x D x 4 bytes (1M x 768: 3.1 GB); the exact search holds a padded
copy and a device copy besides, the IVF index one more copy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def clustered(n: int, dim: int, latent: int, clusters: int, spread: float, noise: float,
              seed: int, chunk: int = 65_536) -> np.ndarray:
  """(n, dim) float32 rows: a Gaussian mixture in `latent` dimensions (unit-variance centres,
  `spread` sigma) mapped to `dim` by a fixed random linear map, plus `noise` sigma per output
  dimension. Generated in chunks (no float64 copy of the whole array)."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((clusters, latent), dtype=np.float32)
  projection = rng.standard_normal((latent, dim), dtype=np.float32) / np.sqrt(latent)
  out = np.empty((n, dim), np.float32)
  for start in range(0, n, chunk):
    m = min(chunk, n - start)
    z = centres[rng.integers(0, clusters, m)]
    z += spread * rng.standard_normal((m, latent), dtype=np.float32)
    out[start:start + m] = z @ projection
    out[start:start + m] += noise * rng.standard_normal((m, dim), dtype=np.float32)
  return out


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
  """Mean fraction of each query's exact neighbours found by the approximate search."""
  return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def measure(n: int, args: argparse.Namespace) -> list[dict]:
  """Rows of the table for one database size."""
  from lvm_jax.export import search
  rows = []
  t = time.perf_counter()
  data = clustered(n + args.queries, args.dim, args.latent, args.clusters, args.spread,
                   args.noise, args.seed)
  data /= np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)  # in place: unit rows
  database, queries = data[:n], data[n:]
  print(f"N={n}: data generated in {time.perf_counter() - t:.1f} s", flush=True)

  exact_queries = queries[:args.exact_queries]
  search.cosine_knn(exact_queries, database, args.k, normalised=True)  # compile
  t = time.perf_counter()
  _, exact = search.cosine_knn(exact_queries, database, args.k, normalised=True)
  seconds = time.perf_counter() - t
  rows.append({"n": n, "backend": "exact JAX", "nprobe": None, "build_s": None,
               "queries": len(exact_queries), "queries_per_s": len(exact_queries) / seconds,
               "recall_at_k": 1.0})
  print(f"N={n}: exact {seconds:.1f} s", flush=True)

  t = time.perf_counter()
  ivf = search.IVFIndex.build(database, nlist=args.nlist, normalised=True, seed=args.seed)
  build_s = time.perf_counter() - t
  print(f"N={n}: IVF nlist={ivf.nlist} built in {build_s:.1f} s", flush=True)
  for nprobe in args.nprobe:
    ivf.knn(queries[:16], args.k, nprobe=nprobe, normalised=True)  # warm
    t = time.perf_counter()
    _, index = ivf.knn(queries, args.k, nprobe=nprobe, normalised=True)
    seconds = time.perf_counter() - t
    rows.append({"n": n, "backend": f"faiss IVF nlist={ivf.nlist}", "nprobe": nprobe,
                 "build_s": build_s, "queries": len(queries),
                 "queries_per_s": len(queries) / seconds,
                 "recall_at_k": recall(index[:len(exact)], exact)})
  return rows


def format_rows(rows: list[dict], k: int) -> str:
  lines = [f"| N | backend | nprobe | build (s) | queries/s | recall@{k} |",
           "| ---: | --- | ---: | ---: | ---: | ---: |"]
  for r in rows:
    build = "-" if r["build_s"] is None else f"{r['build_s']:.1f}"
    nprobe = "-" if r["nprobe"] is None else str(r["nprobe"])
    lines.append(f"| {r['n']:,} | {r['backend']} | {nprobe} | {build} | "
                 f"{r['queries_per_s']:,.0f} | {r['recall_at_k']:.3f} |")
  return "\n".join(lines)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sizes", default="100000,1000000", help="database sizes N, comma-separated")
  p.add_argument("--dim", type=int, default=768)
  p.add_argument("--latent", type=int, default=32, help="intrinsic dimension of the mixture")
  p.add_argument("--clusters", type=int, default=100)
  p.add_argument("--spread", type=float, default=0.5, help="cluster sigma (latent units)")
  p.add_argument("--noise", type=float, default=0.1, help="sigma per output dimension")
  p.add_argument("--queries", type=int, default=2000, help="queries per IVF measurement")
  p.add_argument("--exact-queries", type=int, default=256, help="queries for the exact search")
  p.add_argument("--nprobe", default="1,4,16,64")
  p.add_argument("--nlist", type=int, default=None, help="IVF lists (default round(4 sqrt(N)))")
  p.add_argument("-k", type=int, default=10)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--json", default=None, help="also write the rows and provenance here")
  args = p.parse_args()
  args.nprobe = [int(v) for v in args.nprobe.split(",")]

  import faiss
  import jax
  from lvm_jax.provenance import provenance
  device = jax.devices()[0]
  header = {"device": f"{device.platform} ({getattr(device, 'device_kind', '?')})",
            "cpu_count": os.cpu_count(), "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(), "cpu": platform.processor(),
            "data": f"synthetic: {args.clusters} Gaussian clusters (sigma {args.spread}) in "
                    f"{args.latent} dims, linear map to D={args.dim}, noise {args.noise}, "
                    f"float32", "k": args.k}
  print(json.dumps(header), flush=True)
  rows = []
  for n in (int(v) for v in args.sizes.split(",")):
    rows += measure(n, args)
  print(format_rows(rows, args.k))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"provenance": provenance(benchmark="search_throughput", args=vars(args),
                                          **header), "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
