"""Detector checkpoints, and what `lvm-jax detect` writes: a lens catalogue and an overlay PNG.

A detector checkpoint is the lvm-jax layout (`lvm_jax.checkpoint`) with `params` =
{"backbone", "head", "backbone_state"} (the ResNet's batch statistics, else empty), `config` =
{"model": SUNet config, "detector": {backbone, head_channels, resnet_width, img_size, overlap,
top_k, score_threshold}} and the preprocessing in `meta`.

Catalogue columns (CSV with a `.json` provenance sidecar, or any `hitl.export` format): `ra`,
`dec` (deg, the WCS at the box centre), `score`, `x0`, `y0`, `x1`, `y1` (field pixels, edges:
pixel i covers [i, i+1)), `mask_area_px`, `mask_area_arcsec2`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from lvm_jax import checkpoint, provenance
from lvm_jax.data import preprocess
from lvm_jax.detect import model as model_lib


def save_detector(directory, step: int, name: str, model_config, params, state,
                  prep: preprocess.Preprocessing, detector_config: dict[str, Any],
                  meta: dict[str, Any] | None = None) -> None:
  """Writes a detector checkpoint (see module docstring)."""
  cfg = {"model": model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config),
         "detector": dict(detector_config, backbone=name)}
  checkpoint.save(directory, step, params={**params, "backbone_state": state}, config=cfg,
                  meta=dict(meta or {}, preprocessing=prep.to_dict()))


def load_detector(directory):
  """(LensDetector, params, state, Preprocessing, detector config) from a detector checkpoint."""
  import ml_collections
  directory = pathlib.Path(directory)
  if checkpoint.latest_step(directory) is None:
    raise FileNotFoundError(f"no checkpoint in {directory}")
  cfg = checkpoint.read_json(directory, "config")
  if "detector" not in cfg:
    raise ValueError(f"{directory}: not a detector checkpoint (config has no 'detector')")
  restored = checkpoint.restore(directory)
  d = cfg["detector"]
  model_config = ml_collections.ConfigDict(cfg["model"])
  det = model_lib.build_detector(d["backbone"], model_config, int(d.get("head_channels", 64)),
                                 int(d.get("resnet_width", 64)))
  params = dict(restored["params"])
  state = params.pop("backbone_state", {}) or {}
  prep = preprocess.Preprocessing.from_dict(restored["meta"]["preprocessing"])
  return det, params, state, prep, d


def catalogue_columns(result: dict[str, np.ndarray], wcs_header: str | None,
                      pixel_scale_arcsec: float) -> dict[str, np.ndarray]:
  """Detections in field pixels -> catalogue columns (ra/dec NaN without a WCS)."""
  boxes = np.asarray(result["boxes"], np.float64).reshape(-1, 4)
  cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 - 0.5, (boxes[:, 1] + boxes[:, 3]) / 2 - 0.5
  ra = dec = np.full(len(boxes), np.nan)
  if wcs_header and len(boxes):
    from astropy.io import fits
    from lvm_jax.detect.fits_fields import celestial_wcs
    ra, dec = celestial_wcs(fits.Header.fromstring(wcs_header)).pixel_to_world_values(cx, cy)
  area = np.asarray(result["masks"]).reshape(len(boxes), -1).sum(1) if len(boxes) else np.zeros(0)
  return {"ra": np.asarray(ra, np.float64), "dec": np.asarray(dec, np.float64),
          "score": np.asarray(result["scores"], np.float32),
          "x0": boxes[:, 0].astype(np.float32), "y0": boxes[:, 1].astype(np.float32),
          "x1": boxes[:, 2].astype(np.float32), "y1": boxes[:, 3].astype(np.float32),
          "mask_area_px": area.astype(np.int64),
          "mask_area_arcsec2": (area * pixel_scale_arcsec**2).astype(np.float32)}


def draw_overlay(path, image: np.ndarray, result: dict[str, np.ndarray], truth_boxes=None,
                 title: str = "") -> str:
  """PNG of the g, r, z composite with detections (boxes, score, mask outline) and truth (dashed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.patches import Rectangle
  h, w = image.shape[:2]
  fig, ax = plt.subplots(figsize=(6, 6 * h / w), dpi=120)
  ax.imshow(preprocess.display_rgb(image), origin="lower")
  masks = np.asarray(result.get("masks", np.zeros((0, h, w))))
  if len(masks):
    ax.contour(masks.any(0).astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
  for b in np.asarray(truth_boxes if truth_boxes is not None else np.zeros((0, 4))):
    ax.add_patch(Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                           ec="white", ls="--", lw=1))
  for b, s in zip(np.asarray(result["boxes"]), np.asarray(result["scores"])):
    ax.add_patch(Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                           ec="yellow", lw=1.2))
    ax.text(b[0], b[3] + 1, f"{s:.2f}", color="yellow", fontsize=7)
  ax.set_title(title, fontsize=8)
  ax.set_axis_off()
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return os.fspath(path)


def detect_fits(checkpoint_dir, fits_path, out_dir, score_threshold: float | None = None,
                lens_csv=None) -> dict[str, Any]:
  """Runs a detector checkpoint over one FITS field; writes OUT/<stem>_lenses.csv (+ .json) and
  OUT/<stem>_overlay.png; returns the paths and the number of detections."""
  from lvm_jax.data import fits_cutout
  from lvm_jax.detect import fits_fields, tiling
  from lvm_jax.hitl.export import write_table
  det, params, state, prep, dcfg = load_detector(checkpoint_dir)
  threshold = float(dcfg.get("score_threshold", 0.3) if score_threshold is None else score_threshold)
  field = fits_fields.read_fits_field(fits_path, lens_csv)
  tiled = tiling.TiledDetector(det, params, state, prep, overlap=int(dcfg.get("overlap", 16)),
                               top_k=int(dcfg.get("top_k", 8)), min_score=threshold)
  result = tiled(field.image)
  keep = result["scores"] >= threshold
  result = {"boxes": result["boxes"][keep], "scores": result["scores"][keep],
            "masks": result["masks"][keep]}
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  stem = fits_cutout.cutout_id(fits_path)
  columns = catalogue_columns(result, field.wcs_header, field.meta["pixel_scale_arcsec"])
  csv_path = write_table(out_dir / f"{stem}_lenses.csv", columns, provenance.provenance(
      checkpoint=os.fspath(checkpoint_dir), fits=os.fspath(fits_path), score_threshold=threshold,
      detector=dcfg, preprocessing=prep.to_dict(), n_detections=int(keep.sum())))
  png = draw_overlay(out_dir / f"{stem}_overlay.png", field.image, result, field.boxes,
                     title=f"{stem}: {int(keep.sum())} detections, score >= {threshold:g}")
  return {"catalogue": csv_path, "overlay": png, "n_detections": int(keep.sum())}
