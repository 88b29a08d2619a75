"""Benchmark: one HITL round (train on <= 100 labels, score every object, select) on CPU.

    python benchmarks/hitl_round.py                 # N = 201,319, D = 768, 5 seeds
    python benchmarks/hitl_round.py --n 20000 --seeds 2   # a quick look

Data: a simulated rare-class mixture standing in for galaxy embeddings: 24 Gaussian clusters
in a 32-dimensional latent space (one rare positive cluster of ~0.4% of objects, with a
look-alike negative cluster overlapping it), mapped linearly to D dimensions plus isotropic
noise. Reports the time per round of the fast path (PCA to 128 dimensions, bfloat16 scoring)
and of the exact 768 -> 2048 MLP, and, over seeds, the AUPR that each reaches when trained on
the same labels (those a fast "paper" session collected in 8 rounds of 10).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np

from lvm_jax.hitl import Session


def simulate(n: int, dim: int, seed: int = 0, latent: int = 32, clusters: int = 24,
             rare_fraction: float = 0.004):
  """(n, dim) float32 embeddings and (n,) bool truth of a rare class with a look-alike."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(0.0, 3.0, (clusters, latent))
  centres[1] = centres[0] + rng.normal(0.0, 0.9, latent)  # the look-alike of the rare class
  weights = rng.dirichlet(np.ones(clusters))
  weights[0], weights[1] = 0.0, 2 * rare_fraction
  weights *= (1 - rare_fraction) / weights.sum()
  weights[0] = rare_fraction
  comp = rng.choice(clusters, size=n, p=weights)
  z = centres[comp] + rng.normal(0.0, 1.0, (n, latent))
  mixing = rng.normal(0.0, 1.0 / np.sqrt(latent), (latent, dim))
  x = (z @ mixing).astype(np.float32)
  x += rng.normal(0.0, 0.3, (n, dim)).astype(np.float32)
  return x, comp == 0


def initial_prompts(truth: np.ndarray, seed: int, n_pos: int = 5, n_neg: int = 15):
  """The ids a user starts from: a few known positives and random negatives."""
  rng = np.random.default_rng(1000 + seed)
  pos = rng.choice(np.flatnonzero(truth), n_pos, replace=False)
  neg = rng.choice(np.flatnonzero(~truth), n_neg, replace=False)
  ids = np.concatenate([pos, neg])
  return ids, truth[ids].astype(int)


def run_rounds(session: Session, truth: np.ndarray, seed: int, rounds: int):
  """Prompts, then `rounds` x (next_round, label by truth); returns per-round seconds."""
  ids, labels = initial_prompts(truth, seed)
  session.label(ids, labels)
  times = []
  for _ in range(rounds):
    t = time.perf_counter()
    shown = session.next_round()
    times.append(time.perf_counter() - t)
    session.label(shown, truth[shown].astype(int))
  return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--n", type=int, default=201_319)
  parser.add_argument("--dim", type=int, default=768)
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=8)
  parser.add_argument("--skip-exact", action="store_true")
  args = parser.parse_args()

  print(f"device: {jax.devices()[0].device_kind} ({platform.processor() or platform.machine()}),"
        f" {os.cpu_count()} cores; jax {jax.__version__}")
  x, truth = simulate(args.n, args.dim)
  print(f"N = {args.n:,}, D = {args.dim}, positives = {truth.sum()} ({truth.mean():.2%}), "
        f"labels per run = 20 prompts + {args.rounds} x 10 = {20 + 10 * args.rounds}")

  rows = []
  for seed in range(args.seeds):
    t = time.perf_counter()
    fast = Session(x, seed=seed, truth=truth, fast=True)
    setup = time.perf_counter() - t
    times = run_rounds(fast, truth, seed, args.rounds)
    t = time.perf_counter()
    fast.next_round()  # train on the final labels (<= 100), score all, select
    times.append(time.perf_counter() - t)
    n_labels = fast.history[-1]["labels"]
    row = {"seed": seed, "setup_fast": setup, "round_fast": times,
           "aupr_fast": fast.history[-1]["aupr"], "labels": n_labels}
    if not args.skip_exact:
      labelled = fast.labels()
      exact = Session(x, seed=seed, truth=truth, fast=False)
      exact.label(list(labelled), [int(v) for v in labelled.values()])
      exact_times = []
      for _ in range(2):  # the first call compiles
        t = time.perf_counter()
        exact.next_round()
        exact_times.append(time.perf_counter() - t)
      row.update(round_exact=exact_times[-1], aupr_exact=exact.history[-1]["aupr"])
      exact.close()
    fast.close()
    rows.append(row)
    print(f"seed {seed}: labels {n_labels}, fast round {min(times[-4:]):.3f} s "
          f"(first, compiling: {times[0]:.2f} s; setup {setup:.2f} s), "
          f"AUPR fast {row['aupr_fast']:.4f}" + (
              "" if args.skip_exact else
              f", exact round {row['round_exact']:.2f} s, AUPR exact {row['aupr_exact']:.4f}"),
          flush=True)

  steady = [t for r in rows for t in r["round_fast"][-4:]]  # bucket 128, already compiled
  print(f"\nfast round (<= 100 labels, bucket 128, compiled): median "
        f"{statistics.median(steady):.3f} s, max {max(steady):.3f} s over {len(steady)} rounds")
  if not args.skip_exact:
    ex = [r["round_exact"] for r in rows]
    diffs = [r["aupr_fast"] - r["aupr_exact"] for r in rows]
    print(f"exact round: median {statistics.median(ex):.2f} s")
    print(f"AUPR fast  {np.mean([r['aupr_fast'] for r in rows]):.4f} "
          f"exact {np.mean([r['aupr_exact'] for r in rows]):.4f} "
          f"mean diff {np.mean(diffs):+.4f} (per seed: {', '.join(f'{d:+.4f}' for d in diffs)})")


if __name__ == "__main__":
  main()
