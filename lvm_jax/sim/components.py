"""Light components of a stamp: what `population` and `field` draw and `render` draws with GalSim.

Positions are arcsec from the stamp centre, +x west (right), +y north (up); position angles are
degrees east of north (see `lvm_jax.sim`). Fluxes are nanomaggies in g, r, z, shape (3,).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lvm_jax.sim.observing import EXTINCTION_COEFFICIENTS


@dataclasses.dataclass
class Component:
  """One light component.

  kind: "sersic" (n, hlr (semi-major, arcsec), q, pa, x, y), "inclined_exp" (hlr (face-on,
  arcsec), inclination_deg, scale_height_ratio, pa, x, y), "point" (x, y, optional halo),
  "structure" (a NumPy-rendered pattern, `lvm_jax.sim.structures`), "image" (a prerendered
  unit-flux array `pixels` at `scale` arcsec/px centred on x, y, e.g. a lensed source),
  "absorption" (as "image", with negative flux: the light a dust lane takes out, `dust`).
  """
  kind: str
  flux: np.ndarray
  params: dict


def band_fluxes(mag_r: float, g_r: float, r_z: float, ebv: float = 0.0) -> np.ndarray:
  """g, r, z fluxes (nanomaggies, shape (3,)) from an r magnitude and colours, dimmed by E(B-V)."""
  mags = np.array([mag_r + g_r, mag_r, mag_r - r_z]) + EXTINCTION_COEFFICIENTS * ebv
  return 10.0 ** (-0.4 * (mags - 22.5))


def total_magnitudes(components: list[Component]) -> np.ndarray:
  """AB g, r, z magnitudes of the summed components, shape (3,)."""
  flux = np.sum([c.flux for c in components], axis=0)
  return 22.5 - 2.5 * np.log10(np.maximum(flux, 1e-12))
