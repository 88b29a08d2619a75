r"""Strong-lens detection in wide fields: LVM backbone (frozen, fine-tuned) against ResNet50.

Same head, same fields, same steps and batch for every backbone; seeds vary the head/backbone
initialisation and the batches (the fields are fixed). Writes, under --out (default
docs/detection): results.json (every run, all metrics, provenance), results.md (the table),
pr.png (precision-recall, box IoU 0.5, pooled over seeds), completeness.png and gallery.png.
Fields are simulated into WORKDIR/fields/{train,val,test,impostor}.h5 unless present (val and
test fields hold 0-2 lenses; "impostor" fields hold none and half of their galaxies are lens
impostors). Each run's operating point (the score threshold for purity, completeness and false
positives) is chosen on the val fields (highest F1, box IoU >= 0.5), never on the test fields;
checkpoints go to WORKDIR/runs/<backbone>_s<seed>, and a finished run is not redone.

    python experiments/detection_experiment.py --config detect:tiny \
        --workdir /tmp/detect_run --config.init_from=/tmp/tiny_run/checkpoints \
        --config.fields.train=1000 --config.num_steps=3000

Prints the device, the config and the time of each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

THETA_E_BINS = [0.8, 1.2, 1.8, 3.01]
ARC_SNR_BINS = [0.0, 30.0, 100.0, 300.0, 1e9]


def _fields(workdir: pathlib.Path, c):
  from lvm_jax.detect import fields
  lenses, imp = tuple(c.fields.lenses), c.fields.impostor_fraction
  sets = {"train": (c.fields.seed, c.fields.train, lenses, imp),
          "val": (c.fields.seed + 3, c.fields.val, lenses, imp),
          "test": (c.fields.seed + 1, c.fields.test, lenses, imp),
          "impostor": (c.fields.seed + 2, c.fields.impostor, (0, 0), c.fields.impostor_field_fraction)}
  out = {}
  for name, (seed, n, lenses, imp) in sets.items():
    path = workdir / "fields" / f"{name}.h5"
    if not path.exists():
      t = time.time()
      spec = fields.FieldSpec(size=int(c.fields.size), lenses=lenses,
                              mean_targets=float(c.fields.mean_targets), impostor_fraction=float(imp))
      fl = fields.simulate_fields(int(n), int(seed), spec, workers=int(c.fields.workers))
      fields.write_fields(path, fl, seed=int(seed), spec=spec.to_dict())
      print(f"simulated {n} {name} fields in {time.time() - t:.0f} s -> {path}", flush=True)
    ff = fields.FieldFile(path)
    if len(ff) < int(n):
      raise ValueError(f"{path} holds {len(ff)} fields, the config asks for {n}")
    out[name] = [ff[i] for i in range(int(n))]
    out[name + "_provenance"] = ff.provenance
  return out


def _preprocessing(c):
  from lvm_jax import checkpoint
  from lvm_jax.data import preprocess
  if c.init_from:
    meta = checkpoint.read_json(c.init_from, "meta")
    return preprocess.Preprocessing.from_dict(meta["preprocessing"])
  return preprocess.Preprocessing(mode="fixed", out_size=int(c.model.img_size), normalisation="asinh",
                                  crop_size=int(c.model.img_size) * 3 // 2)


def _threshold(tiled, data, c) -> dict:
  """The operating point: `c.score_threshold`, or when < 0 the val fields' best-F1 score."""
  from lvm_jax.detect import metrics, train
  if float(c.score_threshold) >= 0:
    return {"threshold": float(c.score_threshold), "chosen_on": "config"}
  dets, truths = train.evaluate_fields(tiled, data["val"])
  return dict(metrics.best_f1_threshold(dets, truths), chosen_on="val fields, highest F1")


def _evaluate(tiled, data, c, thr: float) -> dict:
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
      "pr": {"scores": scores.tolist(), "precision": precision.tolist(), "recall": recall.tolist()},
      "eval_seconds": time.time() - t,
  }


def _run(name: str, seed: int, data, prep, c, workdir: pathlib.Path) -> dict:
  from lvm_jax import checkpoint
  from lvm_jax.detect import catalogue, model, tiling, train
  run_dir = workdir / "runs" / f"{name}_s{seed}"
  done = run_dir / "result.json"
  if done.exists():  # finished earlier: its figures (train_seconds, ...) are that run's
    return dict(json.loads(done.read_text()), reused_from=str(done))
  det = model.build_detector(name, c.model, int(c.head_channels), int(c.resnet_width))
  pretrained = None
  if name.startswith("lvm") and c.init_from:
    pretrained = checkpoint.restore(c.init_from)["params"]
  params, state = det.init(seed, pretrained)
  tiles = train.TileSet(data["train"], prep, det.img_size, int(c.overlap))
  print(f"{name} seed {seed}: {len(tiles)} training tiles ({len(tiles.positive)} with lenses), "
        f"backbone {model.count(params['backbone']):,} + head {model.count(params['head']):,} params",
        flush=True)
  out = train.train(det, params, state, tiles, c, seed)
  tiled = tiling.TiledDetector(det, out["params"], out["state"], prep, overlap=int(c.overlap),
                               top_k=int(c.top_k))
  operating = _threshold(tiled, data, c)
  dcfg = {"head_channels": int(c.head_channels), "resnet_width": int(c.resnet_width),
          "img_size": det.img_size, "overlap": int(c.overlap), "top_k": int(c.top_k),
          "score_threshold": operating["threshold"]}
  catalogue.save_detector(run_dir / "checkpoint", int(c.num_steps), name, c.model, out["params"],
                          out["state"], prep, dcfg,
                          meta={"seed": seed, "init_from": c.init_from or None,
                                "operating_point": operating,
                                "train_fields": data["train_provenance"],
                                "val_fields": data["val_provenance"]})
  result = {"backbone": name, "seed": seed, "train_seconds": out["seconds"],
            "history": out["history"], "operating_point": operating,
            **_evaluate(tiled, data, c, operating["threshold"])}
  run_dir.mkdir(parents=True, exist_ok=True)
  done.write_text(json.dumps(result))
  print(f"{name} seed {seed}: box AP50 {result['box']['ap50']:.3f} AP {result['box']['ap']:.3f}, "
        f"threshold {operating['threshold']:.3f} ({operating['chosen_on']}), "
        f"mask AP50 {result['mask']['ap50']:.3f} ({out['seconds']:.0f} s train, "
        f"{result['eval_seconds']:.0f} s eval)", flush=True)
  return result


def _chosen(c) -> str:
  return "val best F1" if float(c.score_threshold) < 0 else f"{float(c.score_threshold):g}"


def _mean_std(values) -> str:
  v = np.array(values, float)
  return f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def _table(results, c) -> str:
  names = list(dict.fromkeys(r["backbone"] for r in results))
  rows = ["| backbone | box AP50 | box AP[.5:.95] | mask AP50 | mask AP[.5:.95] | "
          f"score threshold ({_chosen(c)}) | completeness | purity | "
          "FP / 10,000 galaxies (impostor fields) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for n in names:
    rs = [r for r in results if r["backbone"] == n]
    rows.append("| " + " | ".join([
        n, _mean_std([r["box"]["ap50"] for r in rs]), _mean_std([r["box"]["ap"] for r in rs]),
        _mean_std([r["mask"]["ap50"] for r in rs]), _mean_std([r["mask"]["ap"] for r in rs]),
        _mean_std([r["operating_point"]["threshold"] for r in rs]),
        _mean_std([r["at_threshold"]["completeness"] for r in rs]),
        _mean_std([r["at_threshold"]["purity"] for r in rs]),
        _mean_std([r["fp_impostor_fields"]["per_10k"] for r in rs])]) + " |")
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
          _mean_std([r[key][i]["completeness"] for r in rs]) for i in range(len(bins))) + " |")
  return "\n".join(rows)


def _plots(results, data, prep, c, workdir: pathlib.Path, out: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(dict.fromkeys(r["backbone"] for r in results))
  fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
  for n in names:
    for r in [r for r in results if r["backbone"] == n]:
      ax.plot(r["pr"]["recall"], r["pr"]["precision"], lw=1, alpha=0.8,
              color=f"C{names.index(n)}", label=n if r["seed"] == c.seeds[0] else None)
  ax.set_xlabel("recall (completeness)")
  ax.set_ylabel("precision (purity)")
  ax.set_title("test fields, box IoU >= 0.5, one line per seed", fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out / "pr.png")
  plt.close(fig)

  fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
  for ax, key, label in ((axes[0], "completeness_theta_e", "theta_E (arcsec)"),
                         (axes[1], "completeness_arc_snr", "arc S/N bin")):
    for n in names:
      rs = [r for r in results if r["backbone"] == n]
      y = np.array([[b["completeness"] for b in r[key]] for r in rs])
      ax.errorbar(np.arange(y.shape[1]) + 0.05 * names.index(n), np.nanmean(y, 0),
                  yerr=np.nanstd(y, 0), marker="o", capsize=3, label=n)
    bins = results[0][key]
    ax.set_xticks(range(len(bins)), [f"{b['lo']:g}-{b['hi']:g}" if b["hi"] < 1e8 else f">={b['lo']:g}"
                                     for b in bins], fontsize=7)
    ax.set_xlabel(label)
    ax.set_ylabel(f"completeness (threshold: {_chosen(c)})")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out / "completeness.png")
  plt.close(fig)

  # Gallery: the first test fields with lenses, each backbone's seed-0 detections.
  from lvm_jax.data import preprocess as pp
  from lvm_jax.detect import catalogue, tiling
  shown = [f for f in data["test"] if f.num_lenses][:3] + [data["impostor"][0]]
  fig, axes = plt.subplots(len(shown), len(names), figsize=(3.2 * len(names), 3.2 * len(shown)),
                           dpi=80, squeeze=False)
  from matplotlib.patches import Rectangle
  for j, n in enumerate(names):
    run = workdir / "runs" / f"{n}_s{c.seeds[0]}" / "checkpoint"
    det, params, state, prep_, dcfg = catalogue.load_detector(run)
    tiled = tiling.TiledDetector(det, params, state, prep_, overlap=int(c.overlap), top_k=int(c.top_k))
    for i, f in enumerate(shown):
      ax = axes[i, j]
      res = tiled(f.image)
      keep = res["scores"] >= float(dcfg["score_threshold"])
      ax.imshow(pp.display_rgb(f.image), origin="lower")
      if keep.any():
        ax.contour(res["masks"][keep].any(0).astype(float), levels=[0.5], colors="cyan", linewidths=0.5)
      for b in f.boxes:
        ax.add_patch(Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                               ec="white", ls="--", lw=0.8))
      for b, s in zip(res["boxes"][keep], res["scores"][keep]):
        ax.add_patch(Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                               ec="yellow", lw=1))
        ax.text(b[0], b[3] + 2, f"{s:.2f}", color="yellow", fontsize=6)
      ax.set_axis_off()
      if i == 0:
        ax.set_title(f"{n} (score >= {float(dcfg['score_threshold']):.2f})", fontsize=9)
  fig.suptitle("dashed white: true lenses; yellow: detections (seed "
               f"{c.seeds[0]}, threshold {_chosen(c)}); cyan: masks. Last row: a lens-free "
               "impostor field", fontsize=8)
  fig.tight_layout()
  fig.savefig(out / "gallery.png")
  plt.close(fig)


def main(argv=None) -> int:
  from lvm_jax import config as config_lib
  rest, overrides = config_lib.split_config_args(sys.argv[1:] if argv is None else argv)
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="detect:tiny")
  p.add_argument("--workdir", required=True, type=pathlib.Path)
  p.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "detection")
  args = p.parse_args(rest)
  import jax
  jax.config.update("jax_compilation_cache_dir", str(args.workdir / "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  from lvm_jax import provenance
  c = config_lib.load_config(args.config)
  config_lib.apply_overrides(c, overrides)
  print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()}, cpu cores {os.cpu_count()}")
  print(c, flush=True)
  start = time.time()
  data = _fields(args.workdir, c)
  prep = _preprocessing(c)
  print(f"preprocessing {prep.to_dict()}", flush=True)
  results = [_run(n, int(s), data, prep, c, args.workdir) for n in c.backbones for s in c.seeds]
  args.out.mkdir(parents=True, exist_ok=True)
  table = _table(results, c)
  record = provenance.provenance(
      config=c.to_dict(), command=" ".join(sys.argv), device=str(jax.devices()[0].device_kind),
      wall_seconds=time.time() - start,  # of this invocation (reused runs not included)
      fields={k: data[k + "_provenance"] for k in ("train", "val", "test", "impostor")},
      n_fields={k: len(data[k]) for k in ("train", "val", "test", "impostor")},
      n_test_lenses=int(sum(f.num_lenses for f in data["test"])),
      n_impostor_galaxies=int(sum(f.n_galaxies for f in data["impostor"])),
      results=[{k: v for k, v in r.items() if k != "pr"} for r in results])
  (args.out / "results.json").write_text(json.dumps(record, indent=1, default=str))
  (args.out / "results.md").write_text(table + "\n")
  _plots(results, data, prep, c, args.workdir, args.out)
  print(table)
  print(f"total {time.time() - start:.0f} s; wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
