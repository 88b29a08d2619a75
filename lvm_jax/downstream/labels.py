"""Labels of the downstream tasks from the survey truth, and dihedral augmentation of images + labels.

Parameter-extraction targets, one row per galaxy (`PARAMETERS`): log10 Sersic index, log10
half-light radius (arcsec), axis ratio b/a, cos 2PA, sin 2PA (PA east of north, degrees, period
180), AB magnitude r. Orientation (`lvm_jax.sim`): array rows run north (+y), columns west
(+x); `np.rot90(image, k, axes=(1, 2))` on (B, H, W, C) turns the sky counter-clockwise on
screen and adds 90 k degrees to every PA; mirroring the columns (`image[:, :, ::-1]`) maps PA to
-PA. On (cos 2PA, sin 2PA) that is a factor (-1)^k on both, and a sign flip of sin 2PA.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

PARAMETERS = ("log10_sersic_n", "log10_hlr_arcsec", "axis_ratio", "cos_2pa", "sin_2pa", "mag_r")
TRUTH_COLUMNS = ("truth/sersic_n", "truth/hlr_arcsec", "truth/axis_ratio", "truth/pa_deg",
                 "truth/mag_r")
COS2PA, SIN2PA = 3, 4
SCALAR_PARAMETERS = (0, 1, 2, 5)  # standardised; the (cos, sin) pair stays as is


def parameter_targets(truth: Mapping[str, np.ndarray]) -> np.ndarray:
  """(N, 6) float32 targets in the order of `PARAMETERS` from the truth columns."""
  pa = np.deg2rad(np.asarray(truth["truth/pa_deg"], np.float64))
  return np.stack([np.log10(truth["truth/sersic_n"]), np.log10(truth["truth/hlr_arcsec"]),
                   truth["truth/axis_ratio"], np.cos(2 * pa), np.sin(2 * pa),
                   truth["truth/mag_r"]], axis=1).astype(np.float32)


def pa_from_targets(cos_2pa: np.ndarray, sin_2pa: np.ndarray) -> np.ndarray:
  """PA in degrees east of north in [0, 180) from (cos 2PA, sin 2PA)."""
  return np.rad2deg(0.5 * np.arctan2(sin_2pa, cos_2pa)) % 180.0


def transform_pa(pa_deg: np.ndarray, k: int, flip: bool) -> np.ndarray:
  """PA (degrees) after mirroring the columns (if flip) and then `rot90` by k."""
  pa = -np.asarray(pa_deg, np.float64) if flip else np.asarray(pa_deg, np.float64)
  return (pa + 90.0 * k) % 180.0


def dihedral(batch: Mapping[str, np.ndarray], k: int, flip: bool) -> dict[str, np.ndarray]:
  """The batch with every image-like array (B, H, W[, C]: clean, degraded, deconvolved images,
  masks) mirrored (if flip) then rotated by k x 90 degrees, and its `params` (B, 6) orientation
  targets transformed to match; other arrays (labels, valid) unchanged."""
  out = dict(batch)
  for key, value in batch.items():
    if key != "params" and np.ndim(value) >= 3:
      x = value[:, :, ::-1] if flip else value
      out[key] = np.ascontiguousarray(np.rot90(x, k, axes=(1, 2)))
  if "params" in out:
    p = np.array(out["params"], copy=True)
    if flip:
      p[:, SIN2PA] = -p[:, SIN2PA]
    if k % 2:
      p[:, [COS2PA, SIN2PA]] = -p[:, [COS2PA, SIN2PA]]
    out["params"] = p
  return out


class Standardiser:
  """Per-column shift and scale of the scalar parameters, fitted on the training labels."""

  def __init__(self, targets: np.ndarray):
    self.mean = np.zeros(targets.shape[1], np.float32)
    self.std = np.ones(targets.shape[1], np.float32)
    cols = list(SCALAR_PARAMETERS)
    self.mean[cols] = targets[:, cols].mean(axis=0)
    self.std[cols] = np.maximum(targets[:, cols].std(axis=0), 1e-6)

  def forward(self, y: np.ndarray) -> np.ndarray:
    return ((y - self.mean) / self.std).astype(np.float32)

  def inverse(self, z: np.ndarray, sigma: np.ndarray | None = None):
    y = z * self.std + self.mean
    return y if sigma is None else (y, sigma * self.std)

  def to_dict(self) -> dict[str, list[float]]:
    return {"mean": self.mean.tolist(), "std": self.std.tolist(), "columns": list(PARAMETERS)}
