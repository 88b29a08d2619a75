"""Makes the README's pictures and tables under docs/ from the simulator and the real DR9 cutouts.

Run from the repository root (about 20 s for the gallery and 1 min for the table on one core):

    python docs/make_assets.py gallery    # docs/sim_gallery.png
    python docs/make_assets.py realism    # docs/realism.md
    python docs/make_assets.py training --workdir /tmp/tiny_run   # docs/tiny_training.png
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from lvm_jax import shared_paths

DOCS = pathlib.Path(__file__).resolve().parent
DESI_DIR = shared_paths.desi_cutouts_dir()  # ../shared/data/desi_dr9_south, or $LVM_JAX_SHARED
MAX_PNG_BYTES = 1_500_000
# The gallery's RGB levels are rounded to multiples of this (22 levels per channel, no visible
# banding in the asinh composite): the per-pixel sky noise otherwise makes the PNG ~2.2 MB.
LEVEL_STEP = 12


def _need_real_cutouts() -> None:
  if DESI_DIR is None or not DESI_DIR.is_dir():
    raise SystemExit("the real DR9 cutouts (../shared/data/desi_dr9_south) are absent")


def gallery(path: pathlib.Path = DOCS / "sim_gallery.png", per_class: int = 4, n_real: int = 4,
            r_range: tuple[float, float] = (15.0, 18.5)) -> pathlib.Path:
  """Simulated stamps per class (one row each, r = 15-18.5) above 2 rows of real DR9 cutouts."""
  from PIL import Image

  from lvm_jax.sim.gallery import save_gallery
  _need_real_cutouts()
  save_gallery(str(path), per_class=per_class, desi_dir=DESI_DIR, n_real=n_real, r_range=r_range)
  rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)
  rgb = np.clip(np.round(rgb / LEVEL_STEP) * LEVEL_STEP, 0, 255).astype(np.uint8)
  Image.fromarray(rgb).save(path, optimize=True)
  size = path.stat().st_size
  if size > MAX_PNG_BYTES:
    raise SystemExit(f"{path} is {size:,} bytes, above {MAX_PNG_BYTES:,}")
  return path


def realism(path: pathlib.Path = DOCS / "realism.md", n_sim: int = 400, n_bright: int = 60,
            seed: int = 0) -> pathlib.Path:
  """Runs `lvm_jax.sim.realism.realism_table` and writes it with the command and tolerances."""
  from lvm_jax.sim import realism as realism_lib
  _need_real_cutouts()
  start = time.time()
  rows = realism_lib.realism_table(desi_dir=DESI_DIR, n_sim=n_sim, n_bright=n_bright, seed=seed,
                                   workers=1)
  seconds = time.time() - start
  n_pass = sum(r.passed for r in rows)
  real = sorted(DESI_DIR.glob("*.fits"))
  text = f"""# Simulated vs real DR9 stamps

Made by `python docs/make_assets.py realism` ({seconds:.0f} s on one CPU core), i.e.

```python
from lvm_jax.sim import realism
rows = realism.realism_table(desi_dir="../shared/data/desi_dr9_south", n_sim={n_sim},
                             n_bright={n_bright}, seed={seed}, workers=1)
print(realism.format_table(rows))
```

Simulated: {n_sim} default-survey stamps (152 px, g, r, z, nanomaggies; r = 16.5-21, default
class mix; sky and PSF rows use those in the DES area, the DECaLS rows compare with the
documented DR9 medians) and {n_bright} bright (r = 14-16.5) disk galaxies for the colour and size
rows. Real: the {len(real)} DR9-south cutouts in `shared/data/desi_dr9_south` (256 px, all in the
DES equatorial stripe, bright spirals). Each statistic is measured by the same code on both sets:
sky sigma = 3-sigma-clipped MAD of the 16-px border; lag-1 correlation of adjacent sky pixels
(r band); stellar FWHM = Gaussian fit to the sharpest compact source at >= 30 sky sigma; colours
within 3" of the centre; r50 and r magnitude from the curve of growth within 15.7" (60 px).

Tolerances (column "tolerance"): sky sigma and stellar FWHM within 20% and 15% of the real median
(ratio); lag-1 correlation within 0.1; colours within 0.15 mag; r50 within 40%; r magnitude
within 1 mag; DECaLS-area sky within 20% of the documented DR9 value. Medians with the
interquartile range in brackets. {n_pass} of {len(rows)} rows pass.

{realism_lib.format_table(rows)}
"""
  path.write_text(text)
  return path


def training(workdir: pathlib.Path, path: pathlib.Path = DOCS / "tiny_training.png") -> pathlib.Path:
  """Loss and held-out metrics of a `lvm-jax train` run, from its `train_log.jsonl`."""
  import json
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = [json.loads(line) for line in (workdir / "train_log.jsonl").read_text().splitlines()]
  train = [r for r in rows if r.get("kind") == "train"]
  evals = [r for r in rows if r.get("kind") == "eval"]
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
  # With the descriptor term the total loss is reconstruction + weight x descriptor loss.
  key = "reconstruction_loss" if "reconstruction_loss" in train[0] else "loss"
  config = json.loads((workdir / "config.json").read_text())
  masked = "masked-" if config["task"]["mask_fraction"] > 0 else ""
  axes[0].plot([r["step"] for r in train], [r[key] for r in train], lw=1,
               label=f"{masked}reconstruction MSE (asinh units²)")
  if "descriptor_loss" in train[0]:
    axes[0].plot([r["step"] for r in train], [r["descriptor_loss"] for r in train], lw=1,
                 label="descriptor MSE (standardised)")
  axes[0].set(xlabel="step", ylabel="training loss", yscale="log", title="training loss")
  axes[0].legend(fontsize=7)
  for key, label in (("knn/acc", "k-NN, LVM embedding"), ("knn/pca_acc", "k-NN, PCA of pixels"),
                     ("knn/random_init_acc", "k-NN, random-init encoder")):
    pts = [(r["step"], r[key]) for r in evals if key in r]
    if pts:
      axes[1].plot(*zip(*pts), marker="o", label=label)
  axes[1].set(xlabel="step", ylabel="held-out accuracy (8 classes)", title="representation check")
  axes[1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("what", choices=("gallery", "realism", "training"), nargs="+")
  parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/tiny_run"),
                      help="the training run for `training`")
  args = parser.parse_args(argv)
  for what in args.what:
    print(training(args.workdir) if what == "training" else
          {"gallery": gallery, "realism": realism}[what]())
  return 0


if __name__ == "__main__":
  sys.exit(main())
