"""Galaxy-scale strong lensing: singular isothermal ellipsoid (SIE) + external shear, NumPy only.

Angles are arcsec in the image frame (+x west, +y north), position angles degrees east of north.
The SIE convergence, in the frame whose u axis is the mass major axis, is
kappa(u, v) = theta_E sqrt(q) / (2 sqrt(q^2 u^2 + v^2)) (the "intermediate axis" normalisation of
Kormann et al. 1994 and lenstronomy, for which theta_E is the Einstein radius at any q), with
deflection (Keeton 2001, core 0)
alpha_u = theta_E sqrt(q) / sqrt(1 - q^2) arctan(sqrt(1 - q^2) u / psi),
alpha_v = theta_E sqrt(q) / sqrt(1 - q^2) arctanh(sqrt(1 - q^2) v / psi), psi = sqrt(q^2 u^2 + v^2).
External shear (gamma, angle phi_g counter-clockwise from +x) deflects by
alpha = (g1 x + g2 y, g2 x - g1 y), g1 = gamma cos 2 phi_g, g2 = gamma sin 2 phi_g.
"""

from __future__ import annotations

import numpy as np


def sie_deflection(x: np.ndarray, y: np.ndarray, theta_e: float, q: float, pa_deg: float,
                   x0: float = 0.0, y0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
  """SIE deflection (alpha_x, alpha_y), arcsec, at image positions (x, y) arcsec."""
  phi = np.deg2rad(pa_deg + 90.0)
  c, s = np.cos(phi), np.sin(phi)
  dx, dy = x - x0, y - y0
  u = dx * c + dy * s
  v = -dx * s + dy * c
  q = min(max(q, 1e-3), 0.999)
  f = np.sqrt(1.0 - q * q)
  psi = np.sqrt(q * q * u * u + v * v) + 1e-12
  norm = theta_e * np.sqrt(q) / f
  au = norm * np.arctan(f * u / psi)
  av = norm * np.arctanh(np.clip(f * v / psi, -1 + 1e-12, 1 - 1e-12))
  return au * c - av * s, au * s + av * c


def shear_deflection(x: np.ndarray, y: np.ndarray, gamma: float,
                     angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
  """External shear deflection, arcsec; `angle_deg` counter-clockwise from +x."""
  g1 = gamma * np.cos(2 * np.deg2rad(angle_deg))
  g2 = gamma * np.sin(2 * np.deg2rad(angle_deg))
  return g1 * x + g2 * y, g2 * x - g1 * y


def sersic_b(n: float) -> float:
  """b_n of the Sersic profile (Ciotti & Bertin 1999 expansion)."""
  return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)


def sersic_surface_brightness(x, y, *, x0, y0, n, hlr, q, pa_deg):
  """Unnormalised Sersic surface brightness; `hlr` is the semi-major half-light radius, arcsec."""
  from lvm_jax.sim.structures import galaxy_frame
  u, v = galaxy_frame(x, y, x0, y0, q, pa_deg)
  return np.exp(-sersic_b(n) * (np.hypot(u, v) / hlr) ** (1.0 / n))


def sersic_total(n: float, hlr: float, q: float) -> float:
  """Integral of `sersic_surface_brightness` over the plane, arcsec^2."""
  from scipy.special import gamma as gamma_fn
  b = sersic_b(n)
  return 2 * np.pi * n * gamma_fn(2 * n) * hlr**2 * q / b ** (2 * n)


def ray_trace(lens: dict, source: dict, scale: float, half_size: float) -> tuple[np.ndarray, float]:
  """Lensed image of a Sersic source on a (2m, 2m) grid at `scale` arcsec/px, and magnification.

  lens: theta_e, q, pa (mass), gamma, gamma_angle (deg from +x); source: x0, y0, n, hlr, q,
  pa_deg and optional `clumps` ((k, 4): dx, dy from the source centre in arcsec, Gaussian sigma
  arcsec, share of the source's flux; the Sersic keeps the rest). The returned image is
  normalised to unit *unlensed* flux, so its sum is the total
  magnification mu (surface brightness is conserved: lensed flux / unlensed flux).
  Sub-pixel sampling: each pixel averages 3 x 3 ray positions.
  """
  m = int(np.ceil(half_size / scale))
  sub = 3
  c = (np.arange(2 * m * sub) + 0.5 - m * sub) * (scale / sub)
  x, y = np.meshgrid(c, c)
  ax, ay = sie_deflection(x, y, lens["theta_e"], lens["q"], lens["pa"])
  gx, gy = shear_deflection(x, y, lens["gamma"], lens["gamma_angle"])
  bx, by = x - ax - gx, y - ay - gy
  clumps = np.asarray(source.get("clumps", np.zeros((0, 4))), np.float64).reshape(-1, 4)
  profile = {k: v for k, v in source.items() if k != "clumps"}
  sb = (1.0 - clumps[:, 3].sum()) * sersic_surface_brightness(bx, by, **profile) / sersic_total(
      source["n"], source["hlr"], source["q"])
  for dx, dy, sigma, share in clumps:
    d2 = (bx - source["x0"] - dx) ** 2 + (by - source["y0"] - dy) ** 2
    sb += share * np.exp(-0.5 * d2 / sigma**2) / (2 * np.pi * sigma**2)
  image = sb.reshape(2 * m, sub, 2 * m, sub).mean(axis=(1, 3)) * scale**2
  return image, float(image.sum())
