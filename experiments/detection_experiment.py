r"""Strong-lens detection in wide fields: LVM backbone (frozen, fine-tuned) against ResNet50.

The runs are `lvm-jax train-detector`'s (`lvm_jax.detect.runs`: same head, same fields, same
steps and batch for every backbone; fields in WORKDIR/fields, checkpoints in
WORKDIR/runs/<backbone>_s<seed>, finished runs not redone; each run's operating point chosen on
the val fields). This script adds, under --out (default docs/detection): results.json (every
run, all metrics, provenance), results.md (the table), pr.png (precision-recall, box IoU 0.5,
pooled over seeds), completeness.png and gallery.png.

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


def _plots(results, data, prep, c, workdir: pathlib.Path, out: pathlib.Path) -> None:
  from lvm_jax.detect import runs
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
    ax.set_ylabel(f"completeness (threshold: {runs.chosen(c)})")
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
               f"{c.seeds[0]}, threshold {runs.chosen(c)});\ncyan: masks. Last row: a lens-free "
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
  from lvm_jax.detect import runs
  c = config_lib.load_config(args.config)
  config_lib.apply_overrides(c, overrides)
  print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()}, cpu cores {os.cpu_count()}")
  print(c, flush=True)
  start = time.time()
  done = runs.train_and_evaluate(c, args.workdir, command=" ".join(sys.argv),
                                 log=lambda m: print(m, flush=True))
  results, data, prep, table = done["results"], done["data"], done["prep"], done["table"]
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "results.json").write_text(json.dumps(done["record"], indent=1, default=str))
  (args.out / "results.md").write_text(table + "\n")
  _plots(results, data, prep, c, args.workdir, args.out)
  print(table)
  print(f"total {time.time() - start:.0f} s; wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
