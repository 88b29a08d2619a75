r"""What the demo's app recommends after 5 + 5 prompts: are the first recommendations spirals?

Reads `lvm-jax demo`'s products (WORKDIR/embeddings, carrying `truth/class_name` as
`truth_class_name`, and WORKDIR/survey), then for each seed plays the user of the app: 5
spirals (face-on or barred, drawn at random from the truth) labelled 1 and 5 other galaxies
labelled 0, then one `next_round` of `lvm_jax.hitl.Session` (10 per round) with each strategy:
`similar` (the demo app's), the paper's rule at alpha 0.5 (which after 5+5 prompts shows the
lowest scores by design), the paper's rule at alpha 1 (the highest scores) and `boundary`. It
counts the spirals among the 10 recommendations against their share of the survey, and saves
the first seed's prompts and the demo strategy's recommendations as the app draws them (the
Legacy Survey colour stretch).

    lvm-jax demo --workdir /tmp/demo --no-serve
    python experiments/demo_recommendations.py --demo /tmp/demo --out docs/sim

Writes OUT/demo_recommendations.json (every seed, provenance), OUT/demo_recommendations.md (the
table) and OUT/demo_recommendations.png.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

SPIRALS = ("face_on_spiral", "barred_spiral")
# name -> Session arguments; the first is the demo app's
STRATEGIES = {"similar": dict(strategy="similar"), "paper_a0.5": dict(strategy="paper", alpha=0.5),
              "paper_a1": dict(strategy="paper", alpha=1.0), "boundary": dict(strategy="boundary")}


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--demo", type=pathlib.Path, required=True, help="the demo's --workdir")
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/sim"))
  p.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
  p.add_argument("--prompts", type=int, default=5, help="positives and negatives each")
  return p.parse_args(argv)


def one_seed(embeddings: pathlib.Path, classes: np.ndarray, ids: np.ndarray, seed: int,
             prompts: int, session: dict) -> dict:
  """The prompts, the first round's recommendations and their spiral count for one seed."""
  from lvm_jax.hitl import Session
  rng = np.random.default_rng(seed)
  spiral = np.isin(classes, SPIRALS)
  pos = rng.choice(np.flatnonzero(spiral), prompts, replace=False)
  neg = rng.choice(np.flatnonzero(~spiral), prompts, replace=False)
  with Session(str(embeddings), seed=seed, truth=spiral.astype(np.int8), **session) as s:
    s.label(ids[pos].tolist(), [1] * prompts)
    s.label(ids[neg].tolist(), [0] * prompts)
    picked = np.asarray(s.next_round())
  row = {str(k): r for r, k in enumerate(ids.tolist())}
  rows = np.array([row[str(k)] for k in picked.tolist()])
  return dict(seed=seed, positives=ids[pos].tolist(), negatives=ids[neg].tolist(),
              recommended=picked.tolist(), recommended_classes=classes[rows].tolist(),
              spirals=int(spiral[rows].sum()), n=len(rows), rows=rows.tolist(),
              prompt_rows=np.concatenate([pos, neg]).tolist())


def save_figure(path: pathlib.Path, survey: pathlib.Path, run: dict, ids: np.ndarray,
                strategy: str) -> None:
  from lvm_jax.hitl.app.images import open_source
  from lvm_jax.sim.gallery import legacy_rgb
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  source = open_source(survey)
  index = {str(k): i for i, k in enumerate(ids.tolist())}
  rows = [("prompt: spiral (1)", run["positives"]), ("prompt: other (0)", run["negatives"]),
          (f"recommended ({strategy})", run["recommended"])]
  ncol = max(len(r[1]) for r in rows)
  fig, axes = plt.subplots(len(rows), ncol, figsize=(1.3 * ncol, 1.5 * len(rows)), dpi=110)
  for r, (title, chosen) in enumerate(rows):
    for c in range(ncol):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      if c >= len(chosen):
        ax.axis("off")
        continue
      record = source[index[str(chosen[c])]]
      rgb = legacy_rgb(np.moveaxis(np.asarray(record["image"]), -1, 0))
      ax.imshow(rgb, origin="lower")
      if r == 2:
        ax.set_title(run["recommended_classes"][c].replace("_", " "), fontsize=6)
    axes[r, 0].set_ylabel(title, fontsize=7)
  fig.suptitle(f"demo app, seed {run['seed']}: {run['spirals']} of {run['n']} first "
               "recommendations are spirals", fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv=None) -> int:
  args = parse_args(argv)
  from lvm_jax import provenance, stats
  from lvm_jax.hitl.catalogue import load_catalogue
  started = time.time()
  embeddings, survey = args.demo / "embeddings", args.demo / "survey"
  cat = load_catalogue(str(embeddings))
  classes = np.asarray(cat.columns["truth_class_name"]).astype(str)
  ids = np.asarray(cat.ids)
  share = float(np.isin(classes, SPIRALS).mean())
  runs = {name: [one_seed(embeddings, classes, ids, s, args.prompts, kw) for s in args.seeds]
          for name, kw in STRATEGIES.items()}
  fractions = {name: stats.summarise([r["spirals"] / r["n"] for r in rs])
               for name, rs in runs.items()}
  out = dict(provenance.provenance(
      demo=str(args.demo), seeds=args.seeds, prompts=args.prompts, strategies=STRATEGIES,
      settings="Session defaults otherwise: per_round 10, fast 128-component MLP"),
             n_galaxies=int(cat.n), spiral_share=share, spiral_fraction_first_round=fractions,
             seconds=round(time.time() - started, 1), runs=runs)
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "demo_recommendations.json").write_text(json.dumps(out, indent=1))
  first = next(iter(STRATEGIES))
  save_figure(args.out / "demo_recommendations.png", survey, runs[first][0], ids, first)
  table = markdown(out, runs[first][0]["n"], len(args.seeds))
  (args.out / "demo_recommendations.md").write_text(table)
  print(table)
  return 0


def markdown(out: dict, per_round: int, n_seeds: int) -> str:
  rows = [f"Spirals (face-on or barred) among the first {per_round} recommendations after 5 + 5 "
          f"prompts, {out['n_galaxies']:,} galaxies of `{out['demo']}` (survey share "
          f"{out['spiral_share']:.3f}); median over {n_seeds} prompt draws and its 95 % "
          f"interval. git {out['git_sha'][:12]}, {out['created_utc']}.", "",
          "| strategy | spirals among the first recommendations | per draw |",
          "| --- | --- | --- |"]
  for name, s in out["spiral_fraction_first_round"].items():
    rows.append(f"| {name} | {s['median']:.2f} ({s['ci95'][0]:.2f}-{s['ci95'][1]:.2f}) | "
                + ", ".join(f"{v:.1f}" for v in s["values"]) + " |")
  rows += ["", "Prompts are drawn at random from the truth, so some \"spirals\" have faint arms; a "
           "person picks clearer ones. `similar` is the demo app's strategy; `paper_a0.5` is "
           "the paper's rule, which after 5 + 5 prompts (P/N = 1 > alpha) shows the lowest "
           "scores; `paper_a1` shows the MLP's highest scores. Made by `python "
           "experiments/demo_recommendations.py --demo WORKDIR` after `lvm-jax demo --workdir "
           "WORKDIR --no-serve`. The first draw, as the app shows it:", "",
           "![prompts and first recommendations](demo_recommendations.png)"]
  return "\n".join(rows) + "\n"


if __name__ == "__main__":
  raise SystemExit(main())
