"""Separability ceilings of the simulated survey: supervised ResNet18s trained from scratch.

    python experiments/sim_ceilings.py --workdir /tmp/sim_ceilings --out docs/sim

Classes that a good supervised network cannot tell apart are no test of the LVM, so the
simulated survey publishes what supervision reaches on it (`docs/sim/ceilings.json`):

- `resnet18_4class_acc`: the `gzd` preset (r = 14-17.77) with equal weights for the four
  Galaxy-Zoo-1-like classes: elliptical (`elliptical` + `smooth_disk`, the "smooth" vote),
  edge-on (`edge_on_disk`), spiral (`face_on_spiral` + `barred_spiral`) and other
  (`irregular_merger`); accuracy on a held-out set with the same number of each class.
- `lens_auc_visible`: the `lens_training` preset (half strong lenses with Einstein radii
  1.2-3" and arcs of r = 18-20.5, impostors a quarter: rings, spiral arms, mergers, edge-on
  disks); ROC AUC of strong lens against everything else on a held-out set.

Each ceiling: one survey (fixed seed), one split, `--seeds` seeds of the network
initialisation and batch order; median and 95 % bootstrap interval (`lvm_jax.stats`). Input:
the central `--crop` px of the g, r, z stamp, area-resized to `--size` px, asinh-stretched with
the project's per-band softening (`lvm_jax.data.preprocess.asinh_stretch`) and divided by 3.
Training: `lvm_jax.downstream.training.Trainer` (AdamW, warmup + cosine, one random dihedral
transform per batch), ResNet18 of base width `--width`, classifier head with a hidden layer.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import time

import numpy as np

FOUR_CLASSES = {"elliptical": ("elliptical", "smooth_disk"), "edge-on": ("edge_on_disk",),
                "spiral": ("face_on_spiral", "barred_spiral"), "other": ("irregular_merger",)}
FOUR_CLASS_WEIGHTS = {"elliptical": 0.125, "smooth_disk": 0.125, "edge_on_disk": 0.25,
                      "face_on_spiral": 0.125, "barred_spiral": 0.125, "irregular_merger": 0.25}


def simulate(folder: pathlib.Path, preset: str, n: int, seed: int, workers: int,
             prevalence=None) -> list[str]:
  """The survey's files, written once (a folder that holds them is reused)."""
  from lvm_jax.sim import write_survey
  files = sorted(glob.glob(str(folder / "*.h5")))
  if not files:
    files = write_survey(folder, n=n, seed=seed, workers=workers, preset=preset,
                         prevalence=prevalence)
  return files


def load(files: list[str], crop: int, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(N, size, size, 3) float32 network inputs and (N,) truth class names of the survey."""
  import h5py

  from lvm_jax.data import preprocess
  images, names = [], []
  for path in files:
    with h5py.File(path, "r") as f:
      stamp = f["images"].shape[-1]
      lo = (stamp - crop) // 2
      cube = f["images"][:, :, lo:lo + crop, lo:lo + crop]
      names.append(f["truth/class_name"][:].astype(str))
    for chw in cube:
      hwc = np.moveaxis(chw, 0, -1)
      if size != crop:
        hwc = preprocess.resize_image(hwc, size)
      images.append(preprocess.asinh_stretch(hwc) / 3.0)
  return np.stack(images).astype(np.float32), np.concatenate(names)


def balanced_split(labels: np.ndarray, test_per_class: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(train rows, test rows): `test_per_class` random rows of each class to test."""
  rng = np.random.default_rng([seed, 11])
  test = np.concatenate([rng.choice(np.flatnonzero(labels == c), test_per_class, replace=False)
                         for c in np.unique(labels)])
  train = np.setdiff1d(np.arange(len(labels)), test)
  return rng.permutation(train), np.sort(test)


def train_and_score(x_train, y_train, x_test, num_classes: int, args, seed: int) -> np.ndarray:
  """(N_test, num_classes) softmax probabilities of a ResNet18 trained from scratch."""
  from lvm_jax.downstream import supervised
  recipe = supervised.Recipe(width=args.width, steps=args.steps, batch=args.batch, lr=args.lr)
  return supervised.fit_classifier(x_train, y_train, x_test, num_classes, seed, recipe,
                                   log=lambda m: print(f"    {m}", flush=True))


def ceiling(name: str, x: np.ndarray, y: np.ndarray, classes: list[str], test_per_class: int,
            metric, args) -> dict:
  """Trains `args.seeds` networks on one split; the metric of each and their summary."""
  from lvm_jax import stats
  train, test = balanced_split(y, test_per_class, seed=0)
  counts = {c: int((y[train] == i).sum()) for i, c in enumerate(classes)}
  print(f"{name}: train {counts}, test {test_per_class} per class", flush=True)
  runs = []
  for seed in args.seeds:
    t0 = time.time()
    probs = train_and_score(x[train], y[train], x[test], len(classes), args, seed)
    value = metric(y[test], probs)
    runs.append({"seed": seed, "value": value, "seconds": round(time.time() - t0, 1)})
    print(f"  seed {seed}: {value:.4f} ({runs[-1]['seconds']:.0f} s)", flush=True)
  return {**stats.summarise([r["value"] for r in runs]), "runs": runs, "classes": classes,
          "train_counts": counts, "test_per_class": test_per_class}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="/tmp/sim_ceilings", help="surveys (reused)")
  parser.add_argument("--out", default="docs/sim", help="ceilings.json and ceilings.md go here")
  parser.add_argument("--n_morph", type=int, default=2400)
  parser.add_argument("--n_lens", type=int, default=2000)
  parser.add_argument("--test_per_class", type=int, default=100)
  parser.add_argument("--crop", type=int, default=96, help="central crop of the stamp (px)")
  parser.add_argument("--size", type=int, default=64, help="network input (px)")
  parser.add_argument("--width", type=int, default=32, help="ResNet18 base width")
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--lr", type=float, default=2e-3)
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--survey_seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--only", choices=("morphology", "lens"), default=None)
  args = parser.parse_args(argv)

  from lvm_jax import provenance
  from lvm_jax.hitl import metrics as hitl_metrics
  work, out = pathlib.Path(args.workdir), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  result_path = out / "ceilings.json"
  results = json.loads(result_path.read_text()) if result_path.exists() else {}
  t_start = time.time()

  if args.only in (None, "morphology"):
    t0 = time.time()
    files = simulate(work / "gzd_4class", "gzd", args.n_morph, args.survey_seed, args.workers,
                     FOUR_CLASS_WEIGHTS)
    x, names = load(files, args.crop, args.size)
    classes = list(FOUR_CLASSES)
    lookup = {sim: i for i, c in enumerate(classes) for sim in FOUR_CLASSES[c]}
    keep = np.array([n in lookup for n in names])
    y = np.array([lookup[n] for n in names[keep]], np.int32)
    print(f"gzd survey: {len(names)} stamps, {keep.sum()} in the 4 classes "
          f"({time.time() - t0:.0f} s)", flush=True)
    accuracy = lambda truth, probs: float(np.mean(np.argmax(probs, -1) == truth))
    results["resnet18_4class_acc"] = ceiling("resnet18_4class_acc", x[keep], y, classes,
                                             args.test_per_class, accuracy, args)
    results["resnet18_4class_acc"]["survey"] = {"preset": "gzd", "n": args.n_morph,
                                                "seed": args.survey_seed,
                                                "prevalence": FOUR_CLASS_WEIGHTS}

  if args.only in (None, "lens"):
    t0 = time.time()
    files = simulate(work / "lens_training", "lens_training", args.n_lens, args.survey_seed,
                     args.workers)
    x, names = load(files, args.crop, args.size)
    y = (names == "strong_lens").astype(np.int32)
    print(f"lens_training survey: {len(names)} stamps, {y.sum()} strong lenses "
          f"({time.time() - t0:.0f} s)", flush=True)
    auc = lambda truth, probs: hitl_metrics.roc_auc(truth == 1, probs[:, 1])
    test = min(args.test_per_class * 2, int(y.sum()) // 3)
    results["lens_auc_visible"] = ceiling("lens_auc_visible", x, y, ["other", "strong_lens"],
                                          test, auc, args)
    results["lens_auc_visible"]["survey"] = {"preset": "lens_training", "n": args.n_lens,
                                             "seed": args.survey_seed}

  results["targets"] = {"resnet18_4class_acc": 0.90, "lens_auc_visible": 0.95}
  results["provenance"] = provenance.provenance(
      command="python experiments/sim_ceilings.py", args=vars(args),
      seconds=round(time.time() - t_start, 1))
  result_path.write_text(json.dumps(results, indent=1) + "\n")
  write_markdown(out / "ceilings.md", results)
  print(f"wrote {result_path}")
  return 0


def write_markdown(path: pathlib.Path, results: dict) -> None:
  args = results["provenance"]["args"]
  lines = ["# Separability ceilings of the simulated survey", "",
           f"Made by `python experiments/sim_ceilings.py` (git {results['provenance']['git_sha'][:10]};"
           f" {results['provenance']['seconds']:.0f} s for the last invocation on "
           f"{results['provenance']['host']}). ResNet18 (base width {args['width']}) from scratch,"
           f" {args['steps']} steps of batch {args['batch']}, AdamW lr {args['lr']}, input the "
           f"central {args['crop']} px resized to {args['size']} px, asinh stretch; "
           f"{len(args['seeds'])} seeds of initialisation and batch order on one split. Median "
           "and 95 % bootstrap interval of the median over seeds.", "",
           "| ceiling | survey | classes (train counts) | test | median | 95 % interval | target | pass |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for key, target in results["targets"].items():
    if key not in results:
      continue
    r = results[key]
    counts = ", ".join(f"{c} {n}" for c, n in r["train_counts"].items())
    lo, hi = r["ci95"]
    lines.append(f"| `{key}` | `{r['survey']['preset']}`, {r['survey']['n']} stamps | {counts} | "
                 f"{r['test_per_class']} per class | {r['median']:.3f} | {lo:.3f}-{hi:.3f} | "
                 f">= {target} | {'pass' if r['median'] >= target else 'FAIL'} |")
  lines += ["", "Per seed: " + "; ".join(
      f"`{k}` " + ", ".join(f"{v['value']:.3f}" for v in results[k]["runs"])
      for k in results["targets"] if k in results), ""]
  path.write_text("\n".join(lines))


if __name__ == "__main__":
  raise SystemExit(main())
