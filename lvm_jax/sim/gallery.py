"""A picture to judge realism by eye: simulated stamps per class beside real DR9 cutouts.

RGB = (z, r, g) with the Legacy Survey viewer's asinh colour stretch (Lupton et al. 2004 as in
legacypipe's `sdss_rgb`: scales g 6.0, r 3.4, z 2.2, softening m = 0.03, Q = 20), the same
stretch for simulated and real stamps, displayed north up, east left (`origin="lower"`).
"""

from __future__ import annotations

import glob
import os

import numpy as np


def legacy_rgb(image: np.ndarray) -> np.ndarray:
  """(3, H, W) g, r, z nanomaggies -> (H, W, 3) RGB in [0, 1], R = z, G = r, B = g (`dr2` scheme)."""
  from lvm_jax.data import preprocess
  return preprocess.legacy_survey_rgb(np.moveaxis(np.asarray(image), 0, -1))


def real_cutouts(desi_dir: str | os.PathLike, stamp: int = 152, limit: int | None = None) -> np.ndarray:
  """Real DR9 cutouts (n, 3, stamp, stamp), nanomaggies, centre-cropped, bands ordered g, r, z."""
  from lvm_jax.data.fits_cutout import read_fits_cutout
  out = []
  for path in sorted(glob.glob(os.path.join(os.fspath(desi_dir), "*.fits")))[:limit]:
    data = np.moveaxis(read_fits_cutout(path).image, -1, 0)
    h, w = data.shape[1:]
    y0, x0 = (h - stamp) // 2, (w - stamp) // 2
    out.append(data[:, y0:y0 + stamp, x0:x0 + stamp])
  return np.stack(out) if out else np.zeros((0, 3, stamp, stamp), np.float32)


def save_gallery(path: str, per_class: int = 5, seed: int = 0,
                 desi_dir: str | os.PathLike | None = None, n_real: int = 5,
                 r_range: tuple[float, float] = (16.5, 18.5)) -> str:
  """Saves a PNG grid: one row per simulated class (`per_class` stamps), then rows of real cutouts.

  `r_range` picks bright targets (default r = 16.5-18.5, like the real examples) so that
  structure is visible; the survey default is 16.5-21.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from lvm_jax import shared_paths
  from lvm_jax.sim import classes, survey

  rows = []
  for name in classes.CLASS_NAMES:
    images, _, truth = survey.simulate_survey(per_class, seed=seed, prevalence={name: 1.0}, workers=1,
                                                r_range=r_range)
    labels = [f"{name}\n{t.decode()}" if t else name for t in truth["impostor_kind"]]
    if name == "strong_lens":
      labels = [f"lens thE={e:.1f} snr={s:.0f}" for e, s in zip(truth["theta_e_arcsec"], truth["arc_snr"])]
    rows.append((images, labels))
  desi_dir = desi_dir or shared_paths.desi_cutouts_dir()
  if desi_dir is not None and os.path.isdir(desi_dir):
    real = real_cutouts(desi_dir)
    for start in range(0, min(len(real), 2 * n_real), per_class):
      chunk = real[start:start + per_class]
      rows.append((chunk, ["real DR9"] * len(chunk)))
  fig, axes = plt.subplots(len(rows), per_class, figsize=(2.2 * per_class, 2.35 * len(rows)))
  axes = np.atleast_2d(axes)
  for row, (images, labels) in zip(axes, rows):
    for ax in row:
      ax.set_axis_off()
    for ax, img, label in zip(row, images, labels):
      ax.imshow(legacy_rgb(img), origin="lower", interpolation="nearest")
      ax.set_title(label, fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path
