r"""The paper's experiments on real galaxies: Galaxy Zoo 1 (SDSS colour composites, 6,664).

    lvm-jax ingest ../shared/data/galaxy_zoo1_sdss --catalogue \
        ../shared/data/galaxy_zoo1_sdss/labels.csv --out runs/gz1 --kind display_rgb --stamp 152 \
        --pretrain 0.5 --splits train=0.3,val=0.1,test=0.1 --seed 0 --id-column objid \
        --label-column class_name
    lvm-jax train --config pretrain:gz1 --workdir runs/gz1_pretrain \
        --config.data.files='runs/gz1/*.h5'
    python experiments/real_gz1.py probe   --survey runs/gz1 --pretrained runs/gz1_pretrain
    python experiments/real_gz1.py hitl    --survey runs/gz1 --pretrained runs/gz1_pretrain
    python experiments/real_gz1.py mergers --survey runs/gz1 --pretrained runs/gz1_pretrain
    python experiments/real_gz1.py table1  --survey runs/gz1 --pretrained runs/gz1_pretrain
    python experiments/real_gz1.py few_shot --survey runs/gz1 --pretrained runs/gz1_pretrain

Galaxies of the ingest's `pretrain` split (the LVM's pretraining images) never enter an
experiment: the pool is the train, val and test splits. Each command writes its key of
OUT/results.json (default docs/real; other keys are kept) with its provenance and every run;
`experiments/real_gz1_report.py` turns that into docs/real (results.json, results.md, figures). Embeddings: the pretrained checkpoint's mean embedding (`lvm-jax export`,
float32), and the same network with random weights (seed 1000) as a floor; pixels: the
checkpoint's preprocessing of each stamp (64 px, / 255), flattened. All cached in --workdir.

- probe (`linear_probe`): 4 classes, elliptical / edge-on / spiral (clockwise +
  anticlockwise) / other (merger + don't know); logistic regression on standardised features,
  trained on `--probe-train` galaxies per class of the train split and tested on the same
  number per class of the val + test splits (the rarest class sets it; both drawn per seed).
  LVM embedding against PCA of the pixels (as many components as the embedding has
  dimensions, fitted on the pool) and the random encoder; the differences per seed too.
- hitl (`hitl_spiral`, Fig. 10 of the paper): spirals against as many galaxies drawn from
  elliptical + edge-on; AUPR on the galaxies not labelled. LVM + the paper's MLP after 5+5
  prompts, after one round of 10 recommended by the alpha rule (alpha 0.5) (`_similar`,
  `_boundary`: by those strategies instead), on 15+15, 50+50
  and random labels (`*_1000`: 1,000, or the paper's share of them, 1,000 of 1,700, where the
  pool is smaller); ResNet18 from scratch (`lvm_jax.downstream.supervised`) on 50+50 and the
  random labels.
- mergers (`merger_search`): the whole pool (mergers 1.7 %); 5 mergers and 5 random other
  galaxies as prompts, then 10 rounds of 10 labels by an oracle; mergers found in the 100
  recommended labels and precision per round, for the paper's rule (alpha 0.5), `neighbours`,
  `similar`, `boundary` and random; per seed, the difference in mergers found between
  `similar` (the app's default) and each other strategy.

- table1 (`table1`, Table 1 of the paper): the 4-class task with `--table1-train` galaxies
  per class from the train split (the last 32 of them held out for Multi_active's shares)
  and the rarest class's count per class from val + test, drawn per seed; the strategies of
  `lvm-jax evaluate` (`lvm_jax.downstream.strategies.run_strategies`): Pre_train (encoder
  frozen), Multi_uniform and Multi_active (fine-tuned) on classification, restoration of
  paper-mode degraded images and inpainting, `--downstream-steps` steps of 16; accuracy and
  macro precision, recall, F1.
- few_shot (`few_shot`, Fig. 5): accuracy on the same balanced test set against labels per
  class (`--per-class`, from every train-split galaxy; a class with fewer gives all it has):
  LVM (frozen) + head, ResNet18 and ResNet50 from scratch + the same head
  (`run_few_shot`, `--few-shot-steps` steps of 16), and logistic regression on PCA of the
  pixels, on the random encoder's and on the LVM's embedding.

Seeds 0-4 by default (prompt and subset draws, MLP and network initialisation); medians and
95 % bootstrap intervals (`lvm_jax.stats`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any

import numpy as np

FOUR_CLASSES = {"elliptical": ("elliptical",), "edge_on": ("edge_on",),
                "spiral": ("spiral_clockwise", "spiral_anticlockwise"),
                "other": ("merger", "dont_know")}
POOL_SPLITS = ("train", "val", "test")
RANDOM_INIT_SEED = 1000
RANDOM_SHARE = 1000 / 1700  # the paper's 1,000 random labels of 850 + 850 galaxies


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("experiment", choices=("probe", "hitl", "mergers", "table1", "few_shot"))
  p.add_argument("--survey", type=pathlib.Path, required=True, help="the ingested GZ1 folder")
  p.add_argument("--pretrained", type=pathlib.Path, required=True,
                 help="`lvm-jax train` workdir of the GZ1 pretraining")
  p.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/gz1_experiments"))
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/real"))
  p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
  p.add_argument("--probe-train", type=int, default=50, help="probe: training galaxies per class")
  p.add_argument("--resnet-steps", type=int, default=600,
                 help="hitl: ResNet18 training steps (0: no ResNet rows)")
  p.add_argument("--resnet-width", type=int, default=32, help="hitl: ResNet18 base width")
  p.add_argument("--rounds", type=int, default=10)
  p.add_argument("--table1-train", type=int, default=50, help="table1: training galaxies per class")
  p.add_argument("--downstream-steps", type=int, default=150,
                 help="table1: steps of each strategy (batch 16)")
  p.add_argument("--per-class", type=int, nargs="+", default=[10, 30, 100],
                 help="few_shot: labels per class")
  p.add_argument("--few-shot-steps", type=int, default=150)
  return p.parse_args(argv)


# -- the galaxies --------------------------------------------------------------------------

def export(checkpoint_dir: pathlib.Path, survey: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
  from lvm_jax.export import ExportSettings, export_survey
  settings = ExportSettings(compute_dtype="float32", carry=("catalogue/class_name",))
  export_survey(checkpoint_dir, survey, out, settings, progress=False)
  return out


def random_checkpoint(ckpt: dict[str, Any], out: pathlib.Path) -> pathlib.Path:
  """The restored pretrained checkpoint's network with random weights (seed 1000), its
  preprocessing kept."""
  from lvm_jax import checkpoint, models
  import ml_collections
  if checkpoint.latest_step(out) is not None:
    return out
  model = models.build(ml_collections.ConfigDict(ckpt["config"]["model"]))
  params = models.init_params(model, RANDOM_INIT_SEED)
  meta = {k: v for k, v in ckpt["meta"].items() if k in ("preprocessing", "image_kind")}
  checkpoint.save(out, 0, params=params, config={"model": ckpt["config"]["model"]},
                  meta=dict(meta, random_init_seed=RANDOM_INIT_SEED))
  return out


def load_galaxies(args) -> dict[str, Any]:
  """ids, class names, split names, lvm / random embeddings and pixels of the pool galaxies."""
  from lvm_jax import checkpoint
  from lvm_jax.data.hdf5_source import SslLegacySurveySource
  from lvm_jax.data.pipeline import apply_preprocessing
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.hitl.catalogue import load_catalogue
  from lvm_jax.ingest import splits
  work = args.workdir
  work.mkdir(parents=True, exist_ok=True)
  pretrained = checkpoint.restore(args.pretrained / "checkpoints")
  split_of = {}
  for name in POOL_SPLITS:
    split_of.update({i: name for i in splits.read_split(args.survey, name)})
  cats = {"lvm": load_catalogue(str(export(args.pretrained / "checkpoints", args.survey,
                                           work / "export_lvm"))),
          "random_init": load_catalogue(str(export(
              random_checkpoint(pretrained, work / "random_init_ckpt"), args.survey,
              work / "export_random_init")))}
  ids = [str(i) for i in cats["lvm"].ids.tolist()]
  keep = np.array([i in split_of for i in ids])
  if [str(i) for i in cats["random_init"].ids.tolist()] != ids:
    raise ValueError("the two exports list the galaxies in different orders")
  out = {"ids": np.asarray(ids)[keep],
         "class_name": np.asarray(cats["lvm"].columns["catalogue_class_name"]).astype(str)[keep],
         "lvm": cats["lvm"].embeddings[keep], "random_init": cats["random_init"].embeddings[keep]}
  out["split"] = np.array([split_of[i] for i in out["ids"]])
  pixels_path = work / "pixels.npy"
  if not pixels_path.exists():
    prep = Preprocessing.from_dict(pretrained["meta"]["preprocessing"])
    source = SslLegacySurveySource(sorted(str(p) for p in args.survey.glob("*.h5")))
    index = {k: n for n, k in enumerate(source.ids())}
    pixels = np.stack([apply_preprocessing(prep, np.asarray(source[index[i]]["image"]))[0]
                       for i in out["ids"]]).astype(np.float32)
    np.save(pixels_path, pixels)
  out["pixels"] = np.load(pixels_path)
  return out


def four_class_labels(class_name: np.ndarray) -> np.ndarray:
  """(N,) 0-3 in FOUR_CLASSES order."""
  y = np.full(len(class_name), -1)
  for k, names in enumerate(FOUR_CLASSES.values()):
    y[np.isin(class_name, names)] = k
  return y


def logistic_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
                      ) -> float:
  """Test accuracy of a logistic regression (C 0.1) on features standardised on `train`."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler
  scaler = StandardScaler().fit(x[train])
  clf = LogisticRegression(C=0.1, max_iter=5000).fit(scaler.transform(x[train]), y[train])
  return float((clf.predict(scaler.transform(x[test])) == y[test]).mean())


def pca_features(pixels: np.ndarray, dims: int) -> np.ndarray:
  """(N, dims) principal components of the flattened pixels (fitted on all N, randomised SVD)."""
  from sklearn.decomposition import PCA
  x = pixels.reshape(len(pixels), -1)
  return PCA(dims, svd_solver="randomized", random_state=0).fit_transform(x).astype(np.float32)


# -- experiments ----------------------------------------------------------------------------

def probe(g, args, log) -> dict[str, Any]:
  from lvm_jax import stats
  y = four_class_labels(g["class_name"])
  train_pool = np.flatnonzero((g["split"] == "train") & (y >= 0))
  test_pool = np.flatnonzero((g["split"] != "train") & (y >= 0))
  n_test = int(min(np.bincount(y[test_pool], minlength=4)))
  n_train = min(args.probe_train, int(min(np.bincount(y[train_pool], minlength=4))))
  features = {"lvm": g["lvm"], "pca": pca_features(g["pixels"], g["lvm"].shape[1]),
              "random_init": g["random_init"]}
  runs = []
  for seed in args.seeds:
    rng = np.random.default_rng([seed, 31])
    tr = np.concatenate([rng.choice(train_pool[y[train_pool] == k], n_train, replace=False)
                         for k in range(4)])
    te = np.concatenate([rng.choice(test_pool[y[test_pool] == k], n_test, replace=False)
                         for k in range(4)])
    row = {"seed": seed}
    for name, x in features.items():
      row[name] = logistic_accuracy(x, y, tr, te)
    runs.append(row)
    log(f"probe seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "seed"))
  out = {name: stats.summarise([r[name] for r in runs]) for name in features}
  for base in ("pca", "random_init"):
    out[f"lvm_minus_{base}"] = stats.summarise([r["lvm"] - r[base] for r in runs])
  out.update(classes={k: list(v) for k, v in FOUR_CLASSES.items()}, train_per_class=n_train,
             test_per_class=n_test, classifier="logistic regression, C 0.1, standardised",
             runs=runs)
  return out


def hitl(g, args, log) -> dict[str, Any]:
  from lvm_jax import stats
  from lvm_jax.downstream import supervised
  from lvm_jax.hitl import experiment as hx
  from lvm_jax.hitl import metrics
  spiral = np.isin(g["class_name"], FOUR_CLASSES["spiral"])
  others = np.flatnonzero(np.isin(g["class_name"], ("elliptical", "edge_on")))
  runs = []
  for seed in args.seeds:
    rng = np.random.default_rng([seed, 41])
    rows = np.sort(np.r_[np.flatnonzero(spiral), rng.choice(others, spiral.sum(), replace=False)])
    x, truth, px = g["lvm"][rows], spiral[rows], g["pixels"][rows]
    protocol = hx.Protocol(rounds=1, random_baseline=1000)
    res = hx.run_hitl(x, truth, hx.Method("paper", 0.5), seed, protocol)
    row = {"seed": seed, "n": int(len(rows)), "lvm_5+5": res["stages"][0]["aupr_unlabelled"],
           "lvm_5+5+10": res["stages"][1]["aupr_unlabelled"]}
    for strategy in ("similar", "boundary"):  # the 10 recommended by another rule
      row[f"lvm_5+5+10_{strategy}"] = hx.run_hitl(x, truth, hx.Method(strategy), seed,
                                                  protocol)["stages"][1]["aupr_unlabelled"]
    labelled = {f"{k}+{k}": hx.draw_prompts(truth, seed + 1000, k, k) for k in (15, 50)}
    n_random = min(1000, round(len(rows) * RANDOM_SHARE))
    labelled["1000"] = np.sort(rng.choice(len(rows), n_random, replace=False))
    for name, lab in labelled.items():
      row[f"lvm_{name}"] = hx.run_baseline(x, truth, lab, seed, protocol)["aupr_unlabelled"]
    for name in ("50+50", "1000") if args.resnet_steps > 0 else ():
      lab = labelled[name]
      rest = np.setdiff1d(np.arange(len(rows)), lab)
      probs = supervised.fit_classifier(px[lab], truth[lab].astype(np.int64), px[rest], 2, seed,
                                        supervised.Recipe(steps=args.resnet_steps,
                                                          width=args.resnet_width))
      row[f"resnet18_{name}"] = metrics.average_precision(truth[rest], probs[:, 1])
    runs.append(row)
    log(f"hitl seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                          if k not in ("seed", "n")))
  keys = [k for k in runs[0] if k not in ("seed", "n")]
  out = {k: stats.summarise([r[k] for r in runs]) for k in keys}
  out.update(metric="AUPR of spiral over the galaxies not labelled", n_galaxies=runs[0]["n"],
             spirals=int(spiral.sum()), random_labels=min(1000, round(runs[0]["n"] * RANDOM_SHARE)),
             runs=runs)
  return out


def mergers(g, args, log) -> dict[str, Any]:
  from lvm_jax import stats
  from lvm_jax.hitl import experiment as hx
  truth = g["class_name"] == "merger"
  protocol = hx.Protocol(rounds=args.rounds, report_rounds=tuple(range(args.rounds + 1)))
  methods = [hx.Method("paper", 0.5), hx.Method("neighbours"), hx.Method("similar"),
             hx.Method("boundary"), hx.Method("random")]
  out: dict[str, Any] = {}
  for m in methods:
    found, precision = [], []
    for seed in args.seeds:
      res = hx.run_hitl(g["lvm"], truth, m, seed, protocol)
      disc = np.asarray(res["discovery"])
      prompts = protocol.prompts_positive + protocol.prompts_negative
      after_round = disc[prompts - 1::protocol.per_round]  # found after the prompts, each round
      per_round = np.diff(after_round)
      found.append(int(after_round[-1] - after_round[0]))
      precision.append((per_round / protocol.per_round).tolist())
      log(f"mergers {m.name} seed {seed}: {found[-1]} found in {len(disc) - prompts} labels")
    name = "paper_a0.5" if m.strategy == "paper" else m.strategy
    out[name] = {"found_at_100": stats.summarise(found), "precision_per_round": {
        "median": np.median(precision, axis=0).tolist(), "runs": precision}}
  out.update(paired_differences(out, OURS_FOR_MERGERS))
  out.update(mergers=int(truth.sum()), pool=int(len(truth)),
             prompts="5 mergers + 5 random other galaxies")
  return out


def downstream_config(args, table1: bool):
  """`downstream:tiny` for an ingested set: classification, restoration (paper-mode
  degradation) and inpainting (no physical parameters), no PSF-aware rows."""
  from lvm_jax.configs import downstream
  c = downstream.get_config("tiny")
  c.tasks.names = ["classification", "restoration", "inpainting"]
  c.restoration.psf_aware = False
  c.steps.fine_tuned = 0
  c.batch_size = 16
  c.steps.update(dict(pre_train=args.downstream_steps, multi=args.downstream_steps))
  c.active.update(dict(every=max(1, args.downstream_steps // 8), val_rows=32))
  c.inpainting.update(dict(patch_sizes=[8], fractions=[0.5]))
  c.resnet.kinds = [] if table1 else ["resnet18", "resnet50"]
  c.few_shot.update(dict(per_class=list(args.per_class), seeds=list(args.seeds),
                         steps=args.few_shot_steps, batch_size=16, lvm_modes=["frozen"]))
  return c


def balanced_sets(g, seed: int, n_train: int) -> tuple[np.ndarray, np.ndarray, int, int]:
  """(train rows, test rows, per class, per class) of the 4-class task: `n_train` per class
  (fewer where the train split has fewer) from the train split in random order, as many per
  class as the rarest class has from the val + test splits."""
  y = four_class_labels(g["class_name"])
  train_pool = np.flatnonzero((g["split"] == "train") & (y >= 0))
  test_pool = np.flatnonzero((g["split"] != "train") & (y >= 0))
  n_test = int(min(np.bincount(y[test_pool], minlength=4)))
  n_tr = min(n_train, int(min(np.bincount(y[train_pool], minlength=4))))
  rng = np.random.default_rng([seed, 51])
  tr = np.concatenate([rng.choice(train_pool[y[train_pool] == k], n_tr, replace=False)
                       for k in range(4)])
  te = np.concatenate([rng.choice(test_pool[y[test_pool] == k], n_test, replace=False)
                       for k in range(4)])
  return rng.permutation(tr), np.sort(te), n_tr, n_test


def _downstream_data(g, args, rows_train, rows_test, pre):
  from lvm_jax.data.hdf5_source import SslLegacySurveySource
  from lvm_jax.downstream import datasets
  source = SslLegacySurveySource(sorted(str(p) for p in args.survey.glob("*.h5")))
  index = {k: n for n, k in enumerate(source.ids())}
  y = four_class_labels(g["class_name"])
  build = lambda rows, both: datasets.build_labelled(  # noqa: E731
      source, [index[i] for i in g["ids"][rows]], y[rows], pre["preprocessing"], 7,
      both_modes=both)
  return {"train": build(rows_train, False), "test": build(rows_test, True),
          "classes": list(range(4))}


def table1(g, args, log) -> dict[str, Any]:
  import jax

  from lvm_jax import stats
  from lvm_jax.downstream import evaluation, strategies
  jax.config.update("jax_compilation_cache_dir", str(args.workdir / "jax_cache"))
  pre = evaluation.load_pretrained(args.pretrained)
  config = downstream_config(args, table1=True)
  # each seed's row is kept as it finishes: a rerun resumes after the last finished seed
  done_path = args.workdir / (f"table1_runs_{pathlib.Path(args.pretrained).name}_"
                              f"{args.table1_train}x{args.downstream_steps}.jsonl")
  done = {}
  if done_path.exists():
    done = {r["seed"]: r for r in map(json.loads, done_path.read_text().splitlines())}
  runs = []
  for seed in args.seeds:
    tr, te, n_tr, n_te = balanced_sets(g, seed, args.table1_train)
    if seed in done:
      runs.append(done[seed])
      log(f"table1 seed {seed}: kept from {done_path}")
      continue
    data = _downstream_data(g, args, tr, te, pre)
    config.seed = seed
    timings: dict[str, float] = {}
    res = strategies.run_strategies(config, data, pre, timings)
    row = {"seed": seed}
    for name in evaluation.STRATEGIES:
      c = res[name]["classification"]
      row[name] = {k: c[k] for k in ("accuracy", "precision", "recall", "f1", "confusion")}
      row[name]["restoration_psnr"] = res[name]["restoration"]["paper"].get("psnr")
      row[name]["inpainting_psnr"] = next(iter(res[name]["inpainting"].values())).get("psnr")
      row[name]["seconds"] = timings[name]
      if "shares" in res[name]:
        row[name]["shares"] = res[name]["shares"][-1]["shares"]
    runs.append(row)
    with done_path.open("a") as f:
      f.write(json.dumps(row, default=float) + "\n")
    log(f"table1 seed {seed}: " + ", ".join(f"{k} {row[k]['accuracy']:.3f}"
                                             for k in evaluation.STRATEGIES))
  out: dict[str, Any] = {}
  for name in evaluation.STRATEGIES:
    out[name] = {short: stats.summarise([r[name][long] for r in runs])
                 for short, long in (("acc", "accuracy"), ("precision", "precision"),
                                     ("recall", "recall"), ("f1", "f1"))}
  out.update(classes={k: list(v) for k, v in FOUR_CLASSES.items()}, train_per_class=n_tr,
             test_per_class=n_te, fit_rows=4 * n_tr - int(config.active.val_rows),
             tasks=list(config.tasks.names), steps=int(config.steps.multi),
             batch_size=int(config.batch_size), paper={"Pre_train": 0.784,
                                                       "Multi_uniform": 0.842,
                                                       "Multi_active": 0.854},
             metrics="accuracy and macro precision / recall / F1 on the balanced test set",
             runs=runs)
  return out


def few_shot(g, args, log) -> dict[str, Any]:
  import jax

  from lvm_jax import stats
  from lvm_jax.downstream import datasets, evaluation, strategies
  jax.config.update("jax_compilation_cache_dir", str(args.workdir / "jax_cache"))
  pre = evaluation.load_pretrained(args.pretrained)
  config = downstream_config(args, table1=False)
  _, te, _, n_te = balanced_sets(g, 0, 0)  # the balanced test set
  y = four_class_labels(g["class_name"])
  tr = np.flatnonzero((g["split"] == "train") & (y >= 0))  # every train-split galaxy
  data = _downstream_data(g, args, tr, te, pre)
  timings: dict[str, float] = {}
  res = strategies.run_few_shot(config, data, pre, timings)
  features = {"PCA + logistic regression": pca_features(g["pixels"], g["lvm"].shape[1]),
              "random encoder + logistic regression": g["random_init"],
              "LVM embedding + logistic regression": g["lvm"]}
  for name, x in features.items():
    rows = []
    for per_class in config.few_shot.per_class:
      for seed in config.few_shot.seeds:
        sub = datasets.few_shot_subset(y[tr], int(per_class), range(4), int(seed))
        acc = logistic_accuracy(x, y, tr[sub], te)
        rows.append({"per_class": int(per_class), "seed": int(seed), "n_labels": int(len(sub)),
                     "accuracy": acc})
    res[name] = rows
  out: dict[str, Any] = {}
  for model, rows in res.items():
    out[model] = {str(k): stats.summarise([r["accuracy"] for r in rows if r["per_class"] == k])
                  for k in config.few_shot.per_class}
    log(f"few-shot {model}: " + ", ".join(f"{k}: {v['median']:.3f}" for k, v in
                                          out[model].items()))
  counts = np.bincount(y[tr], minlength=4).tolist()
  return {**out, "runs": res, "train_split_per_class": dict(zip(FOUR_CLASSES, counts)),
          "test_per_class": n_te, "steps": int(config.few_shot.steps),
          "note": "a class with fewer training galaxies than labels per class gives all it has",
          "timings_s": timings}


OURS_FOR_MERGERS = "similar"


def paired_differences(search: dict[str, Any], ours: str) -> dict[str, Any]:
  """{f"{ours}_minus": {strategy: summary of the per-seed differences in mergers found}}."""
  from lvm_jax import stats
  mine = search[ours]["found_at_100"]["values"]
  return {f"{ours}_minus": {name: stats.summarise(np.subtract(mine, v["found_at_100"]["values"]))
                            for name, v in search.items()
                            if name != ours and isinstance(v, dict) and "found_at_100" in v}}


EXPERIMENTS = {"probe": ("linear_probe", probe), "hitl": ("hitl_spiral", hitl),
               "mergers": ("merger_search", mergers), "table1": ("table1", table1),
               "few_shot": ("few_shot", few_shot)}


def main(argv=None) -> int:
  args = parse_args(argv)
  from lvm_jax import checkpoint, provenance
  started = time.time()
  log = lambda m: print(f"[{time.time() - started:6.0f} s] {m}", flush=True)  # noqa: E731
  g = load_galaxies(args)
  log(f"{len(g['ids'])} galaxies outside the pretrain split; classes "
      f"{dict(zip(*np.unique(g['class_name'], return_counts=True)))}")
  key, fn = EXPERIMENTS[args.experiment]
  result = fn(g, args, log)
  result["provenance"] = provenance.provenance(
      experiment=args.experiment, survey=str(args.survey), pretrained=str(args.pretrained),
      seeds=args.seeds, seconds=round(time.time() - started, 1),
      pretrained_step=checkpoint.latest_step(args.pretrained / "checkpoints"),
      argv=[str(a) for a in (argv if argv is not None else sys.argv[1:])])
  args.out.mkdir(parents=True, exist_ok=True)
  path = args.out / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  results[key] = result
  path.write_text(json.dumps(results, indent=1, default=float))
  log(f"wrote {key} to {path}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
