"""`lvm-jax evaluate` on an ingested, labelled set (`lvm-jax ingest`): the paper's Table 1
strategies and its Fig. 5 few-shot curve on the user's own images.

A checkpoint pretrained on one split of an ingest (`data.split`, e.g. `pretrain:gz1`) is
evaluated on other splits of the same ingest: training galaxies from `data.train_split`
(default "train"), test galaxies from `data.test_splits` (default val + test, those the ingest
has); the pretraining
split never enters. Labels: column `data.label_column` (default `catalogue/<the ingest's label
column>`); the classes are its distinct values (sorted) with at least `data.min_class_count`
training galaxies. `data.per_class` > 0 balances both sets: that many training galaxies per
class (all of a class that has fewer) and as many test galaxies per class as the rarest class
has; otherwise `data.n_train` and `data.n_test` random galaxies.

Tasks: classification, restoration (paper-mode degradation, `datasets.build_labelled`) and
inpainting. An ingested set has no physical parameters and no PSFs, hence no parameter task,
no physical degradation mode, no classical deconvolution rows and no PSF-aware restoration.
Strategies (`strategies.run_strategies`): Pre_train, Multi_uniform, Multi_active and the
ResNets of `resnet.kinds`; then the few-shot curve (`strategies.run_few_shot`).
`write` puts results.json and report.md in the workdir.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import jax
import numpy as np

from lvm_jax import provenance
from lvm_jax.data.hdf5_source import SslLegacySurveySource
from lvm_jax.downstream import datasets
from lvm_jax.downstream import strategies
from lvm_jax.ingest import layout as ingest_layout
from lvm_jax.ingest import splits
from lvm_jax.train import data as train_data

TASKS = ("classification", "restoration", "inpainting")


def survey_folder(files) -> pathlib.Path:
  """The ingest folder holding the files of `data.files` (one folder with a manifest.json)."""
  folders = {pathlib.Path(p).parent for p in train_data.survey_paths(files)}
  if len(folders) != 1:
    raise ValueError(f"data.files {files!r} spans folders {sorted(map(str, folders))}; an "
                     "ingested set is one `lvm-jax ingest` folder")
  folder = folders.pop()
  if not (folder / "manifest.json").is_file():
    raise ValueError(f"{folder} has no manifest.json: not an `lvm-jax ingest` folder, but the "
                     "checkpoint was pretrained on an ingest split")
  return folder


def _draw(rows_by_class: list[np.ndarray], per_class: int, rng) -> np.ndarray:
  return np.concatenate([rng.permutation(r)[:per_class] for r in rows_by_class])


def load_data(config, pre) -> dict[str, Any]:
  """{"train", "test"} arrays (`datasets.build_labelled`), their "train_ids" / "test_ids",
  "classes" (label values),
  "class_counts_train", "source", "folder", "label_column"."""
  folder = survey_folder(config.data.files)
  manifest = json.loads((folder / "manifest.json").read_text())
  column = str(config.data.get("label_column", "") or "")
  if not column:
    label = manifest.get("fingerprint", {}).get("label_column")
    if not label:
      raise ValueError(f"{folder} was ingested without a label column; set data.label_column")
    column = f"catalogue/{label}"
  train_split = str(config.data.get("train_split", "train"))
  test_splits = [str(s) for s in config.data.get("test_splits", ["val", "test"])
                 if (folder / ingest_layout.SPLITS / f"{s}.csv").is_file()]
  if not test_splits or not (folder / ingest_layout.SPLITS / f"{train_split}.csv").is_file():
    raise ValueError(f"{folder} has no split {train_split!r} or none of "
                     f"{list(config.data.get('test_splits', []))} (data.train_split, "
                     "data.test_splits; `lvm-jax ingest --splits`)")
  if pre["split"] in (train_split, *test_splits):
    raise ValueError(f"the checkpoint was pretrained on split {pre['split']!r}, which is also "
                     f"an evaluation split ({train_split}, {test_splits})")
  kind = train_data.image_kind(config.data)
  if kind != pre["image_kind"]:
    raise ValueError(f"{folder} holds {kind} images but {pre['path']} was pretrained on "
                     f"{pre['image_kind']}")
  source = SslLegacySurveySource(train_data.survey_paths(config.data.files), columns=(column,))
  values = source.column(column)
  values = np.array([v.decode() if isinstance(v, bytes) else v for v in values])
  ids = np.asarray(source.ids())
  index = {k: n for n, k in enumerate(ids.tolist())}

  def rows_of(names):
    ids = [i for name in names for i in splits.read_split(folder, name)]
    missing = [i for i in ids if i not in index]
    if missing:
      raise ValueError(f"{folder}: split ids {missing[:5]} are not in the survey files")
    return np.array([index[i] for i in ids], np.int64)

  train_rows, test_rows = rows_of([train_split]), rows_of(test_splits)
  names, counts = np.unique(values[train_rows], return_counts=True)
  classes = [v for v, c in zip(names.tolist(), counts) if c >= int(config.data.min_class_count)]
  if len(classes) < 2:
    raise ValueError(f"{folder}: {column} has {dict(zip(names.tolist(), counts.tolist()))} in "
                     f"split {train_split!r}; classification needs two classes with at least "
                     f"data.min_class_count = {int(config.data.min_class_count)} galaxies")
  label = {v: k for k, v in enumerate(classes)}
  y = np.array([label.get(v, -1) for v in values.tolist()])
  train_rows, test_rows = train_rows[y[train_rows] >= 0], test_rows[y[test_rows] >= 0]
  rng = np.random.default_rng(int(config.seed))
  per_class = int(config.data.get("per_class", 0))
  if per_class > 0:
    test_by = [test_rows[y[test_rows] == k] for k in range(len(classes))]
    train_rows = _draw([train_rows[y[train_rows] == k] for k in range(len(classes))], per_class,
                       rng)
    test_rows = _draw(test_by, min(len(r) for r in test_by), rng)
  else:
    train_rows = rng.permutation(train_rows)[:int(config.data.n_train)]
    test_rows = rng.permutation(test_rows)[:int(config.data.n_test)]
  train_rows, test_rows = rng.permutation(train_rows), np.sort(test_rows)
  prep, seed = pre["preprocessing"], int(config.data.degrade_seed)
  return {"train_ids": ids[train_rows].tolist(), "test_ids": ids[test_rows].tolist(),
          "splits": {"train": train_split, "test": test_splits},
          "train": datasets.build_labelled(source, train_rows, y[train_rows], prep, seed),
          "test": datasets.build_labelled(source, test_rows, y[test_rows], prep, seed,
                                          both_modes=True),
          "classes": classes, "class_counts_train": np.bincount(
              y[train_rows], minlength=len(classes)).tolist(),
          "source": source, "folder": str(folder), "label_column": column}


def evaluate(config, pre) -> dict[str, Any]:
  """The results (JSON-ready) of the strategies and the few-shot curve on the ingested set."""
  names = list(config.tasks.get("names", None) or TASKS)
  if "parameters" in names:
    raise ValueError("an ingested set has no physical parameters: leave 'parameters' out of "
                     "tasks.names")
  config = config.copy_and_resolve_references()
  config.tasks.names = names
  t_start, timings = time.time(), {}
  data = load_data(config, pre)
  timings["data"] = time.time() - t_start
  runs = strategies.run_strategies(config, data, pre, timings)
  few_shot = strategies.run_few_shot(config, data, pre, timings)
  timings["total"] = time.time() - t_start
  return {
      "provenance": provenance.provenance(
          config=json.loads(config.to_json_best_effort()), pretrained=pre["path"],
          pretrained_step=pre["step"], pretrained_split=pre["split"],
          preprocessing=pre["preprocessing"].to_dict(), model=pre["model"].to_dict(),
          devices=[str(d) for d in jax.devices()[:1]]),
      "ingest": data["folder"], "label_column": data["label_column"], "classes": data["classes"],
      "class_counts_train": data["class_counts_train"],
      "class_counts_test": np.bincount(data["test"]["label"],
                                       minlength=len(data["classes"])).tolist(),
      "splits": data["splits"], "train_ids": data["train_ids"], "test_ids": data["test_ids"],
      "tasks": names, "strategies": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                                     for k, v in runs.items()},
      "few_shot": few_shot, "timings_s": timings}


def markdown(results) -> str:
  lines = [f"# Downstream evaluation on {results['ingest']}", "",
           f"Classes ({results['label_column']}): "
           + ", ".join(f"{c} ({n} train, {m} test)" for c, n, m in zip(
               results["classes"], results["class_counts_train"], results["class_counts_test"])),
           "", "| Strategy | accuracy | precision | recall | F1 | restoration PSNR | "
           "inpainting PSNR (masked) |", "|---|---|---|---|---|---|---|"]
  for name, s in results["strategies"].items():
    c = s["classification"]
    rest = s.get("restoration", {}).get("paper", {}).get("psnr", float("nan"))
    inp = next(iter(s.get("inpainting", {}).values()), {}).get("psnr_masked", float("nan"))
    lines.append(f"| {name} | {c['accuracy']:.3f} | {c['precision']:.3f} | {c['recall']:.3f} | "
                 f"{c['f1']:.3f} | {rest:.2f} | {inp:.2f} |")
  lines += ["", "Few-shot accuracy (median over seeds) by labelled galaxies per class:", ""]
  for model, rows in results["few_shot"].items():
    per = sorted({r["per_class"] for r in rows})
    lines.append(f"- {model}: " + ", ".join(
        f"{k}: {np.median([r['accuracy'] for r in rows if r['per_class'] == k]):.3f}"
        for k in per))
  return "\n".join(lines) + "\n"


def write(workdir, results) -> pathlib.Path:
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "results.json").write_text(json.dumps(results, indent=1, default=float))
  path = workdir / "report.md"
  path.write_text(markdown(results))
  return path
