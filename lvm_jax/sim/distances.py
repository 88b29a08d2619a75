"""Flat Lambda-CDM distances (H0 = 70 km/s/Mpc, Omega_m = 0.3) on a redshift grid, NumPy only."""

from __future__ import annotations

import functools

import numpy as np

H0 = 70.0  # km/s/Mpc
OMEGA_M = 0.3
C_KM_S = 299792.458
Z_MAX = 1.5


@functools.lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, np.ndarray]:
  z = np.linspace(0.0, Z_MAX, 3001)
  inv_e = 1.0 / np.sqrt(OMEGA_M * (1 + z) ** 3 + 1.0 - OMEGA_M)
  dc = np.concatenate([[0.0], np.cumsum(0.5 * (inv_e[1:] + inv_e[:-1]) * np.diff(z))])
  return z, dc * C_KM_S / H0  # Mpc


def comoving_distance_mpc(z: np.ndarray) -> np.ndarray:
  zg, dc = _grid()
  return np.interp(z, zg, dc)


def distance_modulus(z: np.ndarray) -> np.ndarray:
  """5 log10(D_L / 10 pc), mag."""
  z = np.asarray(z, np.float64)
  dl = (1.0 + z) * comoving_distance_mpc(z)
  return 5.0 * np.log10(np.maximum(dl, 1e-6) * 1e5)


def kpc_per_arcsec(z: np.ndarray) -> np.ndarray:
  """Proper transverse scale, kpc per arcsec."""
  z = np.asarray(z, np.float64)
  da = comoving_distance_mpc(z) / (1.0 + z)
  return da * 1e3 * np.pi / (180.0 * 3600.0)


def volume_weight(z: np.ndarray) -> np.ndarray:
  """Comoving volume per unit redshift, up to a constant: D_C^2 / E(z)."""
  z = np.asarray(z, np.float64)
  return comoving_distance_mpc(z) ** 2 / np.sqrt(OMEGA_M * (1 + z) ** 3 + 1.0 - OMEGA_M)
