"""What else falls in a stamp: fainter neighbour galaxies, stars, and the halo of a bright star.

Number densities are per 152 x 152 px (39.8 arcsec)^2 stamp at high Galactic latitude:
galaxies r = 19.5-25 ~ 1.4e5 deg^-2 (HSC-like counts, d log N / dm ~ 0.3) -> mean 6 per stamp;
stars r = 16-23 ~ 3e3 deg^-2 -> mean 0.4; a bright (r = 10.5-13.5) star within ~25 arcsec in
~2 % of stamps. Neighbours keep >= 2.5 arcsec from the centre, stars >= 3 arcsec.
"""

from __future__ import annotations

import numpy as np

from lvm_jax.sim.components import Component, band_fluxes

MEAN_NEIGHBOURS = 6.0
MEAN_STARS = 0.4
BRIGHT_STAR_PROBABILITY = 0.02
NEIGHBOUR_MAG_RANGE = (19.5, 25.0)
COUNT_SLOPE = 0.3  # d log10 N / dm


def _neighbour_mag(rng: np.random.Generator) -> float:
  lo, hi = NEIGHBOUR_MAG_RANGE
  a = np.log(10.0) * COUNT_SLOPE
  u = rng.random()
  return float(np.log(np.exp(a * lo) + u * (np.exp(a * hi) - np.exp(a * lo))) / a)


def _position(rng, half: float, r_min: float) -> tuple[float, float]:
  while True:
    x, y = rng.uniform(-half, half, 2)
    if np.hypot(x, y) >= r_min:
      return float(x), float(y)


def neighbour(rng: np.random.Generator, ebv: float, half: float) -> Component:
  """A fainter galaxy: exponential or de Vaucouleurs, blue or red, 0.15-3 arcsec."""
  mag = _neighbour_mag(rng)
  hlr = float(np.clip(0.55 * 10 ** (-0.12 * (mag - 22.0)) * rng.lognormal(0, 0.3), 0.15, 3.0))
  red = rng.random() < 0.35
  gr = rng.uniform(1.0, 1.8) if red else rng.uniform(0.25, 0.9)
  rz = rng.uniform(0.6, 1.3) if red else rng.uniform(0.2, 0.8)
  x, y = _position(rng, half, 2.5)
  return Component("sersic", band_fluxes(mag, gr, rz, ebv), dict(
      n=4.0 if red else 1.0, hlr=hlr, q=float(rng.uniform(0.3, 1.0)), pa=float(rng.uniform(0, 180)),
      x=x, y=y))


def star(rng: np.random.Generator, ebv: float, half: float, mag_range=(16.0, 23.0),
         r_min: float = 3.0) -> Component:
  """A point source; g-r 0.3-1.5 with the stellar locus r-z ~ 0.05 + 0.5 (g-r) (+ M-dwarf turn-up)."""
  mag = float(rng.uniform(*mag_range))
  gr = float(rng.uniform(0.3, 1.5))
  rz = 0.05 + 0.5 * gr + max(0.0, gr - 1.2) * 1.5 + 0.05 * rng.standard_normal()
  x, y = _position(rng, half, r_min)
  return Component("point", band_fluxes(mag, gr, rz, ebv), dict(x=x, y=y, halo=False))


def draw_field(rng: np.random.Generator, ebv: float, stamp_arcsec: float,
               force_star_halo: bool = False) -> tuple[list[Component], dict]:
  """Neighbours, stars and maybe a bright star with a halo; truth counts."""
  half = stamp_arcsec / 2.0
  comps = [neighbour(rng, ebv, half + 1.0) for _ in range(rng.poisson(MEAN_NEIGHBOURS))]
  n_stars = rng.poisson(MEAN_STARS)
  comps += [star(rng, ebv, half) for _ in range(n_stars)]
  halo = force_star_halo or rng.random() < BRIGHT_STAR_PROBABILITY
  truth = dict(n_neighbours=len(comps) - n_stars, n_stars=n_stars, has_star_halo=halo)
  if halo:
    far = half * 1.25 if not force_star_halo else half * 0.7
    bright = star(rng, ebv, far, mag_range=(10.5, 13.5), r_min=7.0)
    bright.params.update(halo=True, wing_fraction=float(rng.uniform(0.03, 0.08)),
                         wing_fwhm=float(rng.uniform(4.0, 8.0)))
    comps.append(bright)
    truth["halo_star_mag_r"] = float(22.5 - 2.5 * np.log10(bright.flux[1]))
  return comps, truth
