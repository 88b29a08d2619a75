"""Scaling relations of the simulated galaxies: redshift, luminosity, size and colours, under a selection.

All draws use the generator handed in (one per galaxy, seeded by (seed, index)), so a galaxy's
parameters do not depend on how the survey is split among workers.

Scaling relations (rough, r band, flat LCDM H0 = 70):
- Redshift and luminosity: z from the comoving volume within the selection's z range, absolute
  magnitude M_r ~ Normal(class mean, class sigma), apparent r = M_r + DM(z) + k z (k: class
  K-correction slope). This makes z correlate with magnitude and size.
- Size: semi-major half-light radius R_e [kpc] = R0 10^(-0.4 slope (M_r - M0)), 0.15-0.2 dex
  scatter (Shen et al. 2003-like: R ~ L^0.6 for early types, L^0.3 for disks), converted to
  arcsec with the angular-diameter distance.
- A `Selection` keeps a galaxy when r (before extinction) and the half-light radius fall in its
  windows: candidates are drawn 256 at a time and the first that passes is kept.
- Observed-frame colours follow DR9 galaxies: red sequence g-r = 0.78 + 2.4 z (0.9-1.3 at
  z = 0.05-0.2), r-z = 0.62 + 1.0 z; disks g-r ~ 0.6 + 1.5 z, r-z ~ 0.47 + 0.8 z; star-forming
  arms/irregulars g-r ~ 0.35-0.45 + z.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lvm_jax.sim import distances
from lvm_jax.sim.components import Component

R_MIN, R_MAX = 16.5, 21.0
Z_MIN, Z_MAX = 0.01, 0.8

# family: (M_r mean, M_r sigma, K-correction slope, R0 kpc at M0, M0, size-luminosity slope)
_LUMINOSITY = {
    "elliptical": (-21.6, 0.7, 1.2, 4.0, -21.5, 0.6),
    "disk": (-21.0, 0.8, 0.7, 4.5, -21.0, 0.3),
    "spiral": (-21.2, 0.8, 0.5, 5.5, -21.0, 0.3),
    "irregular": (-20.6, 0.9, 0.3, 4.0, -20.5, 0.3),
}
MAX_HLR_ARCSEC = 12.0


@dataclasses.dataclass(frozen=True)
class Selection:
  """Which targets a survey keeps and how large its stamps are.

  r_range: target r magnitude window (AB, before extinction). hlr_range: semi-major half-light
  radius window, arcsec. z_range: redshift window. theta_e_range: Einstein radii of strong
  lenses, arcsec; lensed_mag_range: r magnitude of their arcs (AB). half_stamp_arcsec: half
  the stamp width (patterns are drawn within it). The r window applies to the dust-free
  magnitude (a dust lane's absorption is in the `mag_*` truth).
  """
  r_range: tuple[float, float] = (R_MIN, R_MAX)
  hlr_range: tuple[float, float] = (0.0, MAX_HLR_ARCSEC)
  z_range: tuple[float, float] = (Z_MIN, Z_MAX)
  theta_e_range: tuple[float, float] = (0.8, 3.0)
  lensed_mag_range: tuple[float, float] = (19.0, 21.5)
  half_stamp_arcsec: float = 19.9

  @property
  def size_selected(self) -> bool:
    return self.hlr_range != (0.0, MAX_HLR_ARCSEC)

  @property
  def pattern_half_size(self) -> float:
    """Largest half-width (arcsec) of a hand-drawn pattern: the stamp less a 1" margin."""
    return self.half_stamp_arcsec - 0.9


def as_selection(selection: Selection | tuple[float, float]) -> Selection:
  """A `Selection`, from one or from an r range (min, max) alone."""
  if isinstance(selection, Selection):
    return selection
  return Selection(r_range=(float(selection[0]), float(selection[1])))


@functools.lru_cache(maxsize=1)
def _z_inverse_cdf() -> tuple[np.ndarray, np.ndarray]:
  z = np.linspace(Z_MIN, Z_MAX, 4000)
  cdf = np.cumsum(distances.volume_weight(z))
  return cdf / cdf[-1], z


def draw_galaxy(rng: np.random.Generator, family: str, selection: Selection,
                scatter_dex: float = 0.17,
                z_range: tuple[float, float] | None = None) -> tuple[float, float, float, float]:
  """(z, M_r, r, hlr arcsec) of a galaxy of `family` that passes `selection`.

  `z_range` narrows the selection's redshift window (e.g. lenses need a distant deflector).
  """
  lo = max(selection.z_range[0], (z_range or selection.z_range)[0])
  hi = min(selection.z_range[1], (z_range or selection.z_range)[1])
  m_mean, m_sigma, k_slope, r0, m0, slope = _LUMINOSITY[family]
  cdf, zg = _z_inverse_cdf()
  u_lo, u_hi = np.interp([lo, hi], zg, cdf)
  (r_min, r_max), (h_min, h_max) = selection.r_range, selection.hlr_range
  for _ in range(400):
    z = np.interp(rng.uniform(u_lo, u_hi, 256), cdf, zg)
    mabs = m_mean + m_sigma * np.clip(rng.standard_normal(256), -3, 3)
    r = mabs + distances.distance_modulus(z) + k_slope * z
    log_r = np.log10(r0) - 0.4 * slope * (mabs - m0) + scatter_dex * rng.standard_normal(256)
    hlr = np.clip(10**log_r / distances.kpc_per_arcsec(z), 0.3, MAX_HLR_ARCSEC)
    ok = np.flatnonzero((r >= r_min) & (r <= r_max) & (hlr >= h_min) & (hlr <= h_max))
    if ok.size:
      i = ok[0]
      return float(z[i]), float(mabs[i]), float(r[i]), float(hlr[i])
  raise RuntimeError(f"no {family} with r in {selection.r_range}, hlr in {selection.hlr_range}, "
                     f"z in ({lo}, {hi})")


def _colours(rng, z, gr0, gr_slope, gr_sigma, rz0, rz_slope, rz_sigma) -> tuple[float, float]:
  """Observed-frame (g-r, r-z), AB: linear in z (g-r flattens beyond z = 0.45) plus scatter."""
  g_r = gr0 + gr_slope * min(z, 0.45) + gr_sigma * rng.standard_normal()
  r_z = rz0 + rz_slope * z + rz_sigma * rng.standard_normal()
  return float(g_r), float(r_z)


def red_colours(rng, z):
  return _colours(rng, z, 0.78, 2.4, 0.05, 0.62, 1.0, 0.05)


def disk_colours(rng, z):
  return _colours(rng, z, 0.60, 1.5, 0.08, 0.47, 0.8, 0.07)


def blue_colours(rng, z):
  return _colours(rng, z, 0.38, 1.0, 0.10, 0.32, 0.6, 0.08)


def disk_axis_ratio(cos_i: float, q0: float = 0.15) -> float:
  """Apparent axis ratio of an oblate disk of intrinsic thickness q0 at inclination cos_i."""
  return float(np.sqrt(cos_i**2 * (1 - q0**2) + q0**2))


def split(mag_r: float, fractions: list[float]) -> list[float]:
  """Magnitudes of the parts of a galaxy of total `mag_r` holding `fractions` of its light."""
  return [mag_r - 2.5 * np.log10(f) for f in fractions]


def base_truth(z, mabs, pa, q, hlr, n, bulge_fraction, subtype="", impostor=""):
  return dict(redshift=z, abs_mag_r=mabs, pa_deg=pa % 180.0, axis_ratio=q, hlr_arcsec=hlr,
              sersic_n=n, bulge_fraction=bulge_fraction, subtype=subtype, impostor_kind=impostor)


def sersic_index(n: float) -> float:
  """Sersic indices come in steps of 0.1 (GalSim caches one radial table per n)."""
  return round(float(n), 1)


def sersic(flux, n, hlr, q, pa, x=0.0, y=0.0) -> Component:
  return Component("sersic", flux, dict(n=sersic_index(n), hlr=hlr, q=q, pa=pa, x=x, y=y))
