"""The central object of a stamp: each morphological class's maker and `draw_target`.

Scaling relations and selections: `scaling`; disks, spirals, bars, rings, clumps, dust lanes and
mergers: `morphology`; strong lenses and impostors: `lens_systems`. Magnitudes and fluxes are
observed (dimmed by Galactic E(B-V)); `mag_*` truth is the total of the target's components
(dust lanes included, a strong lens's arc excluded).
"""

from __future__ import annotations

import numpy as np

from lvm_jax.sim import lens_systems, morphology
from lvm_jax.sim.components import Component, total_magnitudes
from lvm_jax.sim.scaling import R_MAX, R_MIN, Selection, as_selection

__all__ = ["R_MIN", "R_MAX", "MAKERS", "Selection", "draw_target"]

MAKERS = {
    "elliptical": lens_systems.elliptical,
    "smooth_disk": morphology.smooth_disk,
    "edge_on_disk": morphology.edge_on_disk,
    "face_on_spiral": morphology.face_on_spiral,
    "barred_spiral": morphology.barred_spiral,
    "irregular_merger": morphology.irregular_merger,
    "strong_lens": lens_systems.strong_lens,
    "lens_impostor": lens_systems.lens_impostor,
}


def draw_target(rng: np.random.Generator, class_name: str, ebv: float,
                selection: Selection | tuple[float, float] = (R_MIN, R_MAX)
                ) -> tuple[list[Component], dict]:
  """The stamp's central object: its components and scalar truth (including `mag_g/r/z`).

  `selection` is a `scaling.Selection` or an r range (min, max) of the target's magnitude
  before extinction (default 16.5-21, the ssl sample's bright end to its r < 21 cut; e.g.
  (16.5, 18) gives big, bright galaxies for a gallery).
  """
  comps, truth = MAKERS[class_name](rng, ebv, as_selection(selection))
  target = [c for c in comps if c.kind != "image"]
  mags = total_magnitudes(target)
  truth.update(mag_g=mags[0], mag_r=mags[1], mag_z=mags[2])
  return comps, truth
