"""Benchmark: one HITL round (train on <= 100 labels, score every object, select) on CPU.

    python benchmarks/hitl_round.py                 # N = 201,319, D = 768, 5 seeds
    python benchmarks/hitl_round.py --n 20000 --seeds 2   # a quick look
    python benchmarks/hitl_round.py --survey-export EMB   # the simulated survey's embeddings

Data: a simulated rare-class mixture standing in for galaxy embeddings: 24 Gaussian clusters
in a 32-dimensional latent space (one rare positive cluster of ~0.4% of objects, with a
look-alike negative cluster twice as common at a latent offset of 0.8 per dimension), mapped
linearly to D dimensions plus isotropic noise. Reports the time per round of the fast path
(128 principal components, bfloat16 scoring) and of the exact 768 -> 2048 MLP, and, over seeds,
the AUPR that each reaches when trained on the same labels (those a fast "paper" session
collected in 8 rounds of 10, given to an exact session round by round so that both train their
last model from the same initialisation key). Wall times depend on what else runs on the
machine: the load average is printed, and CPU seconds beside them.

With `--survey-export`, the embeddings and truth are those of an `lvm-jax export` of the
simulated survey carrying `truth/class_id` (as `benchmarks/hitl_experiment.py` makes them), and
the rare class is each `--target` in turn.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax.hitl import Session, average_precision
from lvm_jax.hitl import experiment
from lvm_jax.hitl import model as model_lib


def simulate(n: int, dim: int, seed: int = 0, latent: int = 32, clusters: int = 24,
             rare_fraction: float = 0.004, noise: float = 0.05, lookalike: float = 0.0):
  """(n, dim) float32 embeddings and (n,) bool truth of a rare class.

  The rare class is cluster 0; with `lookalike` > 0, cluster 1 (twice as common, negative)
  sits at that latent offset per dimension from it (0.35: strongly overlapping).
  """
  rng = np.random.default_rng(seed)
  centres = rng.normal(0.0, 3.0, (clusters, latent))
  if lookalike:
    centres[1] = centres[0] + rng.normal(0.0, lookalike, latent)
  weights = rng.dirichlet(np.ones(clusters))
  weights[0], weights[1] = 0.0, 2 * rare_fraction
  weights *= (1 - rare_fraction) / weights.sum()
  weights[0] = rare_fraction
  comp = rng.choice(clusters, size=n, p=weights)
  z = centres[comp] + rng.normal(0.0, 1.0, (n, latent))
  mixing = rng.normal(0.0, 1.0 / np.sqrt(latent), (latent, dim))
  x = (z @ mixing).astype(np.float32)
  x += rng.normal(0.0, noise, (n, dim)).astype(np.float32)
  return x, comp == 0


def initial_prompts(truth: np.ndarray, seed: int, n_pos: int = 5, n_neg: int = 15):
  """The ids a user starts from: a few known positives and random negatives."""
  rng = np.random.default_rng(1000 + seed)
  pos = rng.choice(np.flatnonzero(truth), n_pos, replace=False)
  neg = rng.choice(np.flatnonzero(~truth), n_neg, replace=False)
  ids = np.concatenate([pos, neg])
  return ids, truth[ids].astype(int)


def run_rounds(session: Session, truth: np.ndarray, seed: int, rounds: int):
  """Prompts, then `rounds` x (next_round, label by truth), then one more next_round on the
  final labels; returns per-round (wall, CPU) seconds and the (ids, labels) given per round."""
  ids, labels = initial_prompts(truth, seed)
  session.label(ids, labels)
  times, given = [], [(ids, labels)]
  for r in range(rounds + 1):
    t, c = time.perf_counter(), time.process_time()
    shown = session.next_round()
    times.append((time.perf_counter() - t, time.process_time() - c))
    if r < rounds:
      session.label(shown, truth[shown].astype(int))
      given.append((shown, truth[shown].astype(int)))
  return times, given


def replay_exact(x: np.ndarray, seed: int, given) -> tuple[Session, tuple[float, float]]:
  """An exact Session given the fast one's labels round by round (its own recommendations
  ignored), so its last round has the same round number, hence the same initialisation key,
  as the fast session's; returns it and the (wall, CPU) seconds of that last, compiled round."""
  exact = Session(x, seed=seed, fast=False)
  for i, (ids, labels) in enumerate(given):
    if i:
      exact.next_round()
    exact.label(ids, labels)
  t, c = time.perf_counter(), time.process_time()
  exact.next_round()
  return exact, (time.perf_counter() - t, time.process_time() - c)


def reinit_aupr(session: Session, labelled: dict, truth: np.ndarray, seed: int) -> float:
  """AUPR of the session's (fast) model retrained on the same labels from another init:
  the spread that initialisation alone gives, against which fast-vs-exact is judged."""
  rows = np.array(sorted(labelled))
  y = np.array([labelled[r] == "1" for r in rows], np.float32)
  params = model_lib.train(session.inputs, rows, y, jax.random.key(10_000 + seed))
  return average_precision(truth, model_lib.BlockScorer(session.inputs, jnp.bfloat16)(params))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--n", type=int, default=201_319)
  parser.add_argument("--dim", type=int, default=768)
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=8)
  parser.add_argument("--lookalike", type=float, default=0.8,
                      help="add a negative look-alike cluster at this latent offset")
  parser.add_argument("--fast-dims", type=int, default=128)
  parser.add_argument("--skip-exact", action="store_true")
  parser.add_argument("--survey-export", default=None,
                      help="an export of the simulated survey with truth_class_id (instead of "
                           "the Gaussian mixture)")
  parser.add_argument("--target", default="face_on_spiral,strong_lens",
                      help="with --survey-export: comma-separated class names")
  args = parser.parse_args()

  print(f"device: {jax.devices()[0].platform.upper()} ({platform.machine()}), "
        f"{len(os.sched_getaffinity(0))} cores; jax {jax.__version__}; "
        f"load average {os.getloadavg()[0]:.1f}")
  if args.survey_export is None:
    x, truth = simulate(args.n, args.dim, lookalike=args.lookalike)
    compare(args, x, truth, f"Gaussian mixture, look-alike offset {args.lookalike}")
    return
  x, cat = experiment.load_survey_embeddings(args.survey_export)
  for target in args.target.split(","):
    compare(args, x, experiment.target_truth(cat, target),
            f"simulated survey {args.survey_export}, target {target}")


def compare(args, x: np.ndarray, truth: np.ndarray, what: str) -> None:
  """Times fast rounds and compares fast and exact AUPR on the same labels, per seed."""
  n, dim = x.shape
  print(f"\n{what}: N = {n:,}, D = {dim}, positives = {truth.sum()} ({truth.mean():.2%}), "
        f"labels = 20 prompts + {args.rounds} x 10 = {20 + 10 * args.rounds}; hidden = 2048; "
        f"fast = {args.fast_dims} principal components, bfloat16 scoring")

  rows = []
  for seed in range(args.seeds):
    t = time.perf_counter()
    fast = Session(x, seed=seed, fast=True, fast_dims=args.fast_dims)
    setup = time.perf_counter() - t
    times, given = run_rounds(fast, truth, seed, args.rounds)
    labelled = fast.labels()
    row = {"seed": seed, "setup": setup, "fast": times[-4:],  # bucket 128, compiled
           "aupr_fast": average_precision(truth, fast.scores()),
           "aupr_reinit": reinit_aupr(fast, labelled, truth, seed)}
    if not args.skip_exact:
      exact, row["exact"] = replay_exact(x, seed, given)
      assert exact.labels() == labelled and exact.round == fast.round
      row["aupr_exact"] = average_precision(truth, exact.scores())
      exact.close()
    fast.close()
    rows.append(row)
    wall = statistics.median(w for w, _ in row["fast"])
    cpu = statistics.median(c for _, c in row["fast"])
    print(f"seed {seed}: {len(labelled)} labels; fast round {wall:.3f} s wall / {cpu:.3f} s CPU "
          f"(session setup {setup:.1f} s, first round incl. compile {times[0][0]:.1f} s); "
          f"AUPR fast {row['aupr_fast']:.4f} (another init {row['aupr_reinit']:.4f})" + (
              "" if args.skip_exact else
          f"; exact round {row['exact'][0]:.2f} s wall; AUPR exact {row['aupr_exact']:.4f}"),
          flush=True)

  walls = [w for r in rows for w, _ in r["fast"]]
  cpus = [c for r in rows for _, c in r["fast"]]
  print(f"\nfast round (train on <= 100 labels, score all {n:,}, select): "
        f"median {statistics.median(walls):.3f} s wall, {statistics.median(cpus):.3f} s CPU "
        f"(min {min(walls):.3f}, max {max(walls):.3f} s wall over {len(walls)} rounds); "
        f"load average now {os.getloadavg()[0]:.1f}")
  if not args.skip_exact:
    diffs = [r["aupr_fast"] - r["aupr_exact"] for r in rows]
    print(f"exact round ({dim} -> 2048, float32): median "
          f"{statistics.median(r['exact'][0] for r in rows):.2f} s wall")
    print(f"AUPR over {len(rows)} seeds: fast {np.mean([r['aupr_fast'] for r in rows]):.4f}, "
          f"exact {np.mean([r['aupr_exact'] for r in rows]):.4f}, mean difference "
          f"{np.mean(diffs):+.4f} (per seed {', '.join(f'{d:+.4f}' for d in diffs)})")
  spread = [r["aupr_fast"] - r["aupr_reinit"] for r in rows]
  print(f"fast vs fast from another init on the same labels: mean |difference| "
        f"{np.mean(np.abs(spread)):.4f} (per seed {', '.join(f'{d:+.4f}' for d in spread)})")


if __name__ == "__main__":
  main()
