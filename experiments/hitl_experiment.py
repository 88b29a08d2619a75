"""The HITL experiment on the simulated survey, with an oracle labeller.

    python experiments/hitl_experiment.py --checkpoint /tmp/tiny_run/checkpoints --out docs/hitl_experiment
    python experiments/hitl_experiment.py --checkpoint CKPT --quick   # smoke run, 2-3 min

1. Simulates N galaxies of `--preset` (default `gzd`: bright, resolved galaxies with visible
   lenses) with strong lenses at `--lens-fraction` (`lvm_jax.sim.write_survey`), cached under
   `--workdir`.
2. Exports their embeddings with the pretrained checkpoint (`lvm_jax.export.export_survey`,
   the preprocessing recorded in the checkpoint, `truth/class_id` carried), cached too.
3. For "face-on spiral" and "strong lens", each seed: 5 + 5 prompts drawn from the truth, then
   10 rounds of 10 oracle labels with `lvm_jax.hitl.Session` for the paper's rule (alpha 0.1,
   0.5, 0.9), boundary, similar (prototype ranking) and random sampling; baselines: the same
   MLP on 15 + 15 and on 1,000 random labels (`lvm_jax.hitl.experiment`).
4. Writes `--out`/hitl_experiment.md (table, mean ± std over seeds), one PNG per target (AUPR
   against labels spent, discovery curve) and results.json (every run, with provenance).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

from lvm_jax import provenance as provenance_lib
from lvm_jax.hitl import experiment

TARGETS = ("face_on_spiral", "strong_lens")


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--checkpoint", required=True, type=pathlib.Path,
                 help="pretrained Orbax checkpoint folder (e.g. WORKDIR/checkpoints)")
  p.add_argument("--n", type=int, default=20_000, help="simulated galaxies")
  p.add_argument("--lens-fraction", type=float, default=0.001, help="strong-lens probability")
  p.add_argument("--preset", default="gzd", help="simulated survey preset (lvm_jax.sim.presets)")
  p.add_argument("--survey-seed", type=int, default=1,
                 help="survey seed (default 1: `lvm-jax simulate`'s default seed 0 is the one "
                      "pretraining uses, and judged galaxies never enter pretraining)")
  p.add_argument("--seeds", type=int, default=5, help="HITL seeds (prompts, init, picks)")
  p.add_argument("--rounds", type=int, default=10)
  p.add_argument("--embedding", default="mean", choices=("mean", "authors", "multiscale"))
  p.add_argument("--exact", action="store_true",
                 help="the exact D -> 2048 MLP (float32) instead of Session's fast path")
  p.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/hitl_experiment"),
                 help="cache of the simulated survey and its export")
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/hitl_experiment"))
  p.add_argument("--quick", action="store_true",
                 help="smoke run: 400 galaxies with 3%% lenses, 1 seed, 2 rounds, small MLP")
  args = p.parse_args(argv)
  if args.quick:
    args.n, args.lens_fraction, args.seeds, args.rounds = 400, 0.03, 1, 2
  return args


def export_dir(workdir: pathlib.Path, survey: pathlib.Path, checkpoint: pathlib.Path,
               embedding: str) -> pathlib.Path:
  """One export folder per (survey, checkpoint, embedding)."""
  tag = hashlib.sha1(str(checkpoint.resolve()).encode()).hexdigest()[:8]
  return workdir / f"export_{survey.name}_{embedding}_{tag}"


def main(argv=None) -> int:
  args = parse_args(argv)
  started = time.time()
  log = lambda msg: print(f"[{time.time() - started:7.1f} s] {msg}", flush=True)
  log(f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, load average "
      f"{os.getloadavg()[0]:.1f}; N = {args.n:,}, lens fraction {args.lens_fraction:g}, "
      f"{args.seeds} seeds, {args.rounds} rounds")

  survey = experiment.prepare_survey(args.workdir, args.n, args.survey_seed, args.lens_fraction,
                                     preset=args.preset)
  t_sim = time.time() - started
  log(f"survey: {survey}")
  emb_dir = export_dir(args.workdir, survey, args.checkpoint, args.embedding)
  experiment.export_embeddings(args.checkpoint, survey, emb_dir, args.embedding)
  t_export = time.time() - started - t_sim
  x, cat = experiment.load_survey_embeddings(emb_dir)
  log(f"embeddings: {emb_dir}, {x.shape[0]:,} x {x.shape[1]}")

  session = {"fast": not args.exact}
  if args.quick:
    session.update(hidden=256, fast_dims=32, steps=50)
  protocol = experiment.Protocol(rounds=args.rounds, report_rounds=(0, 1, args.rounds),
                                 random_baseline=200 if args.quick else 1000, session=session)
  methods = experiment.default_methods()
  args.out.mkdir(parents=True, exist_ok=True)
  all_rows, tables, counts = {}, [], {}
  for target in TARGETS:
    truth = experiment.target_truth(cat, target)
    counts[target] = int(truth.sum())
    log(f"{target}: {truth.sum()} of {len(truth)} ({truth.mean():.3%})")
    rows = experiment.run_target(x, truth, range(args.seeds), methods, protocol, log=log)
    all_rows[target] = rows
    summary = experiment.summarise(rows, protocol.report_rounds)
    title = target.replace("_", " ")
    tables.append(f"### {title} ({truth.sum()} of {len(truth):,}, {truth.mean():.2%})\n\n"
                  + experiment.markdown_table(summary))
    experiment.plot_target(rows, title, args.out / f"{target}.png", float(truth.mean()))

  seconds = time.time() - started
  record = provenance_lib.provenance(
      command=" ".join([os.path.basename(sys.argv[0])] + (argv or sys.argv[1:])),
      checkpoint=str(args.checkpoint.resolve()), survey=str(survey),
      survey_record=json.loads((survey / experiment.SURVEY_DONE).read_text()),
      embeddings=str(emb_dir), embedding=args.embedding, embedding_dim=int(x.shape[1]),
      n_objects=int(x.shape[0]), positives=counts, seeds=args.seeds,
      protocol={k: v for k, v in vars(protocol).items()}, methods=[m.name for m in methods],
      metrics_note="AUPR, purity (score > 0.5) and completeness over all N objects, labelled "
                   "ones scored by the model; aupr_unlabelled over the objects not labelled",
      seconds={"total": round(seconds, 1), "simulate": round(t_sim, 1),
               "export": round(t_export, 1)},
      machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores")
  with open(args.out / "results.json", "w") as f:
    json.dump({"provenance": record, "rows": all_rows}, f, default=_json_default)
  header = (f"HITL experiment: {x.shape[0]:,} simulated galaxies, {args.embedding} embedding "
            f"({x.shape[1]}-d) of `{args.checkpoint}`, {args.seeds} seeds, "
            f"{'exact' if args.exact else 'fast'} Session MLP; mean ± std over seeds. "
            f"git {record['git_sha']}, {record['created_utc']}.\n\n")
  (args.out / "hitl_experiment.md").write_text(header + "\n".join(tables))
  print(header + "\n".join(tables))
  log(f"wrote {args.out}; total {seconds:.0f} s (simulate {t_sim:.0f} s, export "
      f"{t_export:.0f} s)")
  return 0


def _json_default(v):
  if isinstance(v, np.generic):
    return v.item()
  if isinstance(v, np.ndarray):
    return v.tolist()
  return str(v)


if __name__ == "__main__":
  sys.exit(main())
