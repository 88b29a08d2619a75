"""The detection runs of a `detect` config: fields, then training and evaluation of each backbone
and seed (`lvm-jax train-detector`, `experiments/detection_experiment.py`).

Same head, same fields, same steps and batch for every backbone; seeds vary the head/backbone
initialisation and the batches (the fields are fixed). Fields are simulated into
WORKDIR/fields/{train,val,test,impostor}.h5 unless present (val and test fields hold
`config.fields.lenses` lenses; "impostor" fields hold none and `impostor_field_fraction` of their
galaxies are lens impostors). Each run's operating point (the score threshold for purity,
completeness and false positives) is `config.score_threshold`, or when that is < 0 the val
fields' highest-F1 score (box IoU >= 0.5), never the test fields'. A run writes
WORKDIR/runs/<backbone>_s<seed>/checkpoint (an `lvm-jax detect` checkpoint) and result.json; a
finished run is not redone. `train_and_evaluate` writes WORKDIR/results.json (every run, all
metrics, provenance) and WORKDIR/results.md (the table).
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any, Callable

import numpy as np

from lvm_jax import stats

THETA_E_BINS = [0.8, 1.2, 1.8, 2.4, 3.01]   # arcsec
ARC_SNR_BINS = [0.0, 30.0, 100.0, 300.0, 1e9]
FIELD_SETS = ("train", "val", "test", "impostor")


def _say(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def load_fields(workdir: pathlib.Path, c, log: Callable[[str], None] = _say) -> dict[str, Any]:
  """{set: [Field], set + "_provenance": its file's provenance} for the four field sets of
  `c.fields`, simulated into WORKDIR/fields/<set>.h5 first where absent."""
  from lvm_jax.detect import fields
  lenses, imp = tuple(c.fields.lenses), c.fields.impostor_fraction
  sets = {"train": (c.fields.seed, c.fields.train, lenses, imp),
          "val": (c.fields.seed + 3, c.fields.val, lenses, imp),
          "test": (c.fields.seed + 1, c.fields.test, lenses, imp),
          "impostor": (c.fields.seed + 2, c.fields.impostor, (0, 0),
                       c.fields.impostor_field_fraction)}
  out: dict[str, Any] = {}
  for name, (seed, n, lenses, imp) in sets.items():
    path = pathlib.Path(workdir) / "fields" / f"{name}.h5"
    if not path.exists():
      t = time.time()
      path.parent.mkdir(parents=True, exist_ok=True)
      spec = fields.FieldSpec(size=int(c.fields.size), lenses=lenses,
                              mean_targets=float(c.fields.mean_targets),
                              impostor_fraction=float(imp),
                              theta_e_range=tuple(c.fields.theta_e_range),
                              lensed_mag_range=tuple(c.fields.lensed_mag_range))
      fl = fields.simulate_fields(int(n), int(seed), spec, workers=int(c.fields.workers))
      fields.write_fields(path, fl, seed=int(seed), spec=spec.to_dict())
      log(f"simulated {n} {name} fields in {time.time() - t:.0f} s -> {path}")
    ff = fields.FieldFile(path)
    if len(ff) < int(n):
      raise ValueError(f"{path} holds {len(ff)} fields, the config asks for {n}")
    out[name] = [ff[i] for i in range(int(n))]
    out[name + "_provenance"] = ff.provenance
  return out


def preprocessing(c):
  """The pretraining checkpoint's preprocessing (`c.init_from`), else fixed crops at 1.5x the
  model's input size with asinh."""
  from lvm_jax import checkpoint
  from lvm_jax.data import preprocess
  if c.init_from:
    meta = checkpoint.read_json(c.init_from, "meta")
    return preprocess.Preprocessing.from_dict(meta["preprocessing"])
  return preprocess.Preprocessing(mode="fixed", out_size=int(c.model.img_size),
                                  normalisation="asinh", crop_size=int(c.model.img_size) * 3 // 2)


def operating_point(tiled, data, c) -> dict[str, Any]:
  """The operating point: `c.score_threshold`, or when < 0 the val fields' best-F1 score."""
  from lvm_jax.detect import metrics, train
  if float(c.score_threshold) >= 0:
    return {"threshold": float(c.score_threshold), "chosen_on": "config"}
  dets, truths = train.evaluate_fields(tiled, data["val"])
  return dict(metrics.best_f1_threshold(dets, truths), chosen_on="val fields, highest F1")


def evaluate(tiled, data, thr: float) -> dict[str, Any]:
  """COCO box and mask AP on the test fields; purity, completeness (by theta_E and arc S/N) and
  false positives per 10,000 impostor-field galaxies at score threshold `thr`; the PR curve."""
  from lvm_jax.detect import metrics, train
  t = time.time()
  dets, truths = train.evaluate_fields(tiled, data["test"])
  imp_dets, _ = train.evaluate_fields(tiled, data["impostor"])
  found = np.concatenate(metrics.found_lenses(dets, truths, thr))
  theta = np.concatenate([f.lenses["theta_e_arcsec"] for f in data["test"]])
  snr = np.concatenate([f.lenses["arc_snr"] for f in data["test"]])
  scores, precision, recall = metrics.precision_recall(dets, truths)
  return {
      "box": metrics.coco_ap(dets, truths, "box"), "mask": metrics.coco_ap(dets, truths, "mask"),
      "at_threshold": metrics.purity_completeness(dets, truths, thr),
      "fp_impostor_fields": metrics.false_positives_per_10k(
          imp_dets, [f.n_galaxies for f in data["impostor"]], thr),
      "completeness_theta_e": metrics.completeness_by(found, theta, THETA_E_BINS),
      "completeness_arc_snr": metrics.completeness_by(found, snr, ARC_SNR_BINS),
      "pr": {"scores": scores.tolist(), "precision": precision.tolist(),
             "recall": recall.tolist()},
      "eval_seconds": time.time() - t,
  }


def run_dir(workdir: pathlib.Path, backbone: str, seed: int) -> pathlib.Path:
  return pathlib.Path(workdir) / "runs" / f"{backbone}_s{seed}"


def run(name: str, seed: int, data, prep, c, workdir: pathlib.Path,
        log: Callable[[str], None] = _say) -> dict[str, Any]:
  """Trains backbone `name` with `seed`, saves its checkpoint, evaluates it; the result dict
  (also WORKDIR/runs/<name>_s<seed>/result.json, reused when present)."""
  from lvm_jax import checkpoint
  from lvm_jax.detect import catalogue, model, tiling, train
  directory = run_dir(workdir, name, seed)
  done = directory / "result.json"
  if done.exists():  # finished earlier: its figures (train_seconds, ...) are that run's
    return dict(json.loads(done.read_text()), reused_from=str(done))
  det = model.build_detector(name, c.model, int(c.head_channels), int(c.resnet_width))
  pretrained = None
  if name.startswith("lvm") and c.init_from:
    pretrained = checkpoint.restore(c.init_from)["params"]
  params, state = det.init(seed, pretrained)
  tiles = train.TileSet(data["train"], prep, det.img_size, int(c.overlap))
  log(f"{name} seed {seed}: {len(tiles)} training tiles ({len(tiles.positive)} with lenses), "
      f"backbone {model.count(params['backbone']):,} + head {model.count(params['head']):,} "
      "params")
  out = train.train(det, params, state, tiles, c, seed, log=log)
  tiled = tiling.TiledDetector(det, out["params"], out["state"], prep, overlap=int(c.overlap),
                               top_k=int(c.top_k))
  operating = operating_point(tiled, data, c)
  dcfg = {"head_channels": int(c.head_channels), "resnet_width": int(c.resnet_width),
          "img_size": det.img_size, "overlap": int(c.overlap), "top_k": int(c.top_k),
          "score_threshold": operating["threshold"]}
  catalogue.save_detector(directory / "checkpoint", int(c.num_steps), name, c.model,
                          out["params"], out["state"], prep, dcfg,
                          meta={"seed": seed, "init_from": c.init_from or None,
                                "operating_point": operating,
                                "train_fields": data["train_provenance"],
                                "val_fields": data["val_provenance"]})
  result = {"backbone": name, "seed": seed, "train_seconds": out["seconds"],
            "history": out["history"], "operating_point": operating,
            **evaluate(tiled, data, operating["threshold"])}
  directory.mkdir(parents=True, exist_ok=True)
  done.write_text(json.dumps(result))
  log(f"{name} seed {seed}: box AP50 {result['box']['ap50']:.3f} AP {result['box']['ap']:.3f}, "
      f"threshold {operating['threshold']:.3f} ({operating['chosen_on']}), "
      f"mask AP50 {result['mask']['ap50']:.3f} ({out['seconds']:.0f} s train, "
      f"{result['eval_seconds']:.0f} s eval)")
  return result


def chosen(c) -> str:
  """How the operating point was chosen, for captions."""
  return "val best F1" if float(c.score_threshold) < 0 else f"{float(c.score_threshold):g}"


def _median_ci(values) -> str:
  """"median (lo-hi)": the median over seeds and its 95 % bootstrap interval (`lvm_jax.stats`)."""
  s = stats.summarise(values)
  if not s["n"]:
    return "n/a"
  lo, hi = s["ci95"]
  return f"{s['median']:.3f} ({lo:.3f}-{hi:.3f})" if s["n"] > 1 else f"{s['median']:.3f}"


def summary(results) -> dict[str, dict[str, dict]]:
  """backbone -> {box_ap50, box_ap, mask_ap50, mask_ap} -> `stats.summarise` over seeds."""
  names = dict.fromkeys(r["backbone"] for r in results)
  return {n: {f"{kind}_{ap}": stats.summarise([r[kind][ap] for r in results if r["backbone"] == n])
              for kind in ("box", "mask") for ap in ("ap50", "ap")} for n in names}


def table(results, c) -> str:
  """The markdown tables: AP, purity, completeness, FP rate per backbone (median over seeds and
  its 95 % bootstrap interval), then completeness by theta_E and by arc S/N."""
  names = list(dict.fromkeys(r["backbone"] for r in results))
  rows = ["| backbone | box AP50 | box AP[.5:.95] | mask AP50 | mask AP[.5:.95] | "
          f"score threshold ({chosen(c)}) | completeness | purity | "
          "FP / 10,000 galaxies (impostor fields) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for n in names:
    rs = [r for r in results if r["backbone"] == n]
    rows.append("| " + " | ".join([
        n, _median_ci([r["box"]["ap50"] for r in rs]), _median_ci([r["box"]["ap"] for r in rs]),
        _median_ci([r["mask"]["ap50"] for r in rs]), _median_ci([r["mask"]["ap"] for r in rs]),
        _median_ci([r["operating_point"]["threshold"] for r in rs]),
        _median_ci([r["at_threshold"]["completeness"] for r in rs]),
        _median_ci([r["at_threshold"]["purity"] for r in rs]),
        _median_ci([r["fp_impostor_fields"]["per_10k"] for r in rs])]) + " |")
  for key, label, unit in (("completeness_theta_e", "theta_E", "arcsec"),
                           ("completeness_arc_snr", "arc S/N", "")):
    bins = results[0][key]
    head = [f"{b['lo']:g}-{b['hi']:g}" if b["hi"] < 1e8 else f">= {b['lo']:g}" for b in bins]
    rows += ["", f"Completeness by {label} {unit} (at each run's threshold; lenses per bin: "
             + ", ".join(str(b["n"]) for b in bins) + ")", "",
             "| backbone | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(bins)]
    for n in names:
      rs = [r for r in results if r["backbone"] == n]
      rows.append(f"| {n} | " + " | ".join(
          _median_ci([r[key][i]["completeness"] for r in rs]) for i in range(len(bins))) + " |")
  return "\n".join(rows)


def train_and_evaluate(c, workdir, command: str = "",
                       log: Callable[[str], None] = _say) -> dict[str, Any]:
  """Every backbone of `c.backbones` for every seed of `c.seeds` (see module); writes
  WORKDIR/results.json and results.md. Returns {"record": the results.json dict, "results":
  the runs (with PR curves), "data": the fields, "prep": the preprocessing, "table": the
  markdown}."""
  import jax
  from lvm_jax import provenance
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  start = time.time()
  data = load_fields(workdir, c, log)
  prep = preprocessing(c)
  log(f"preprocessing {prep.to_dict()}")
  results = [run(n, int(s), data, prep, c, workdir, log) for n in c.backbones for s in c.seeds]
  record = provenance.provenance(
      config=c.to_dict(), command=command, device=str(jax.devices()[0].device_kind),
      wall_seconds=time.time() - start,  # of this invocation (reused runs not included)
      fields={k: data[k + "_provenance"] for k in FIELD_SETS},
      n_fields={k: len(data[k]) for k in FIELD_SETS},
      n_test_lenses=int(sum(f.num_lenses for f in data["test"])),
      n_impostor_galaxies=int(sum(f.n_galaxies for f in data["impostor"])),
      checkpoints={f"{n}_s{s}": str(run_dir(workdir, n, int(s)) / "checkpoint")
                   for n in c.backbones for s in c.seeds},
      summary=summary(results),
      results=[{k: v for k, v in r.items() if k != "pr"} for r in results])
  markdown = table(results, c)
  (workdir / "results.json").write_text(json.dumps(record, indent=1, default=str))
  (workdir / "results.md").write_text(markdown + "\n")
  return {"record": record, "results": results, "data": data, "prep": prep, "table": markdown}
