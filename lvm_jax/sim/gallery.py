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


def class_mosaic(per_class: int = 20, preset: str = "gzd", lens_preset: str = "lens_training",
                 seed: int = 0, crop: int = 80,
                 desi_dir: str | os.PathLike | None = None, workers: int | None = None,
                 level_step: int = 16) -> tuple[np.ndarray, list[str]]:
  """An RGB mosaic (rows * crop, per_class * crop, 3) uint8: one row per class of `preset`
  (`per_class` stamps, the central `crop` px, `legacy_rgb` stretch; strong lenses and impostors
  from `lens_preset`, whose deflectors are as faint as real ones), then the real DR9 cutouts
  (when `desi_dir` holds them); and the row labels. Levels are rounded to `level_step` (the
  sky noise otherwise doubles the PNG's size with no visible difference)."""
  from lvm_jax.sim import classes, survey
  rows, labels = [], []
  for name in classes.CLASS_NAMES:
    lens = 1.0 if name == "strong_lens" else 0.0
    images, _, _ = survey.simulate_survey(per_class, seed=seed, prevalence={name: 1.0}, workers=workers,
                                          lens_fraction=lens,
                                          preset=lens_preset if name in ("strong_lens", "lens_impostor") else preset)
    rows.append(images)
    labels.append(name)
  if desi_dir is not None and os.path.isdir(desi_dir):
    real = real_cutouts(desi_dir, stamp=rows[0].shape[-1])[:per_class]
    rows.append(real)
    labels.append("real DR9")
  tiles = []
  for images in rows:
    h = images.shape[-1]
    a = (h - crop) // 2
    row = np.zeros((crop, per_class * crop, 3))
    for j, img in enumerate(images[:per_class]):
      row[:, j * crop:(j + 1) * crop] = legacy_rgb(img[:, a:a + crop, a:a + crop])
    tiles.append(row)
  rgb = np.round(np.concatenate(tiles) * 255 / level_step) * level_step
  return np.clip(rgb, 0, 255).astype(np.uint8), labels


def save_class_mosaic(path: str, **kwargs) -> str:
  """Saves `class_mosaic(**kwargs)` as a PNG with each row's label in its first stamp."""
  from PIL import Image, ImageDraw
  rgb, labels = class_mosaic(**kwargs)
  crop = rgb.shape[0] // len(labels)
  image = Image.fromarray(rgb)
  draw = ImageDraw.Draw(image)
  for i, label in enumerate(labels):
    draw.text((3, i * crop + 2), label, fill=(255, 255, 255))
  image.save(path, optimize=True)
  return path
