"""The simulated morphological classes, their integer ids and default prevalence.

`class_id` is the index into `CLASS_NAMES`. Lens impostors are galaxies that a lens finder
confuses with lenses; which kind is recorded in the truth column `impostor_kind`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

CLASS_NAMES = (
    "elliptical",
    "smooth_disk",
    "edge_on_disk",
    "face_on_spiral",
    "barred_spiral",
    "irregular_merger",
    "strong_lens",
    "lens_impostor",
)
CLASS_IDS = {name: i for i, name in enumerate(CLASS_NAMES)}

IMPOSTOR_KINDS = (
    "ring_galaxy", "tight_spiral", "tidal_feature", "star_halo", "merger", "edge_on_disk")

# Weights, not probabilities (normalised on use). Roughly the r < 21 mix of Galaxy Zoo DECaLS
# (Walmsley et al. 2022) with each common class kept >= 5 % for demos; strong lenses are
# ~1 in 1000 (galaxy-scale lenses are ~1e-3 of massive ellipticals at DR9 depth, Huang et al.
# 2020, rounded up), impostors (rings, tight arms, tidal features, star halos) a few per cent.
DEFAULT_PREVALENCE = {
    "elliptical": 0.24,
    "smooth_disk": 0.20,
    "edge_on_disk": 0.10,
    "face_on_spiral": 0.18,
    "barred_spiral": 0.10,
    "irregular_merger": 0.12,
    "strong_lens": 0.001,
    "lens_impostor": 0.05,
}


def prevalence_probabilities(prevalence: Mapping[str, float] | None = None,
                             lens_fraction: float | None = None) -> np.ndarray:
  """Class probabilities, shape (len(CLASS_NAMES),), summing to 1.

  `prevalence` maps class name -> weight; classes it leaves out get weight 0 (pass
  `DEFAULT_PREVALENCE | {...}` to change a few). `lens_fraction`, when given, fixes the
  probability of `strong_lens` and scales the others to fill the rest.
  """
  prevalence = DEFAULT_PREVALENCE if prevalence is None else prevalence
  unknown = set(prevalence) - set(CLASS_NAMES)
  if unknown:
    raise ValueError(f"unknown classes {sorted(unknown)}; known: {CLASS_NAMES}")
  w = np.array([float(prevalence.get(name, 0.0)) for name in CLASS_NAMES])
  if (w < 0).any() or w.sum() <= 0:
    raise ValueError("prevalence weights must be >= 0 and not all 0")
  p = w / w.sum()
  if lens_fraction is not None:
    if not 0.0 <= lens_fraction <= 1.0:
      raise ValueError("lens_fraction must be in [0, 1]")
    lens = CLASS_IDS["strong_lens"]
    others = p.copy()
    others[lens] = 0.0
    if others.sum() == 0:
      others[:] = 1.0
      others[lens] = 0.0
    p = others / others.sum() * (1.0 - lens_fraction)
    p[lens] = lens_fraction
  return p
