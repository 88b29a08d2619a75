"""Per-galaxy parameters of each morphological class: redshift, magnitude, colours, shape.

All draws use the generator handed in (one per galaxy, seeded by (seed, index)), so a galaxy's
parameters do not depend on how the survey is split among workers.

Scaling relations (rough, r band, flat LCDM H0 = 70):
- Redshift and luminosity: z from the comoving volume (0.01 < z < 0.8), absolute magnitude
  M_r ~ Normal(class mean, class sigma), apparent r = M_r + DM(z) + k z (k: class K-correction
  slope), kept when R_MIN <= r <= R_MAX. This makes z correlate with magnitude and size.
- Size: semi-major half-light radius R_e [kpc] = R0 10^(-0.4 slope (M_r - M0)), 0.15-0.2 dex
  scatter (Shen et al. 2003-like: R ~ L^0.6 for early types, L^0.3 for disks), converted to
  arcsec with the angular-diameter distance.
- Observed-frame colours follow DR9 galaxies: red sequence g-r = 0.78 + 2.4 z (0.9-1.3 at
  z = 0.05-0.2), r-z = 0.62 + 1.0 z; disks g-r ~ 0.6 + 1.5 z, r-z ~ 0.47 + 0.8 z; star-forming arms/irregulars
  g-r ~ 0.35-0.45 + z; lensed sources g-r ~ 0.2, r-z ~ 0.2.
Magnitudes and fluxes are observed (dimmed by Galactic E(B-V)); `mag_*` truth is the total of
the target's components.
"""

from __future__ import annotations

import functools

import numpy as np

from lvm_jax.sim import classes, distances, lensing
from lvm_jax.sim.components import Component, band_fluxes, total_magnitudes

R_MIN, R_MAX = 16.5, 21.0
Z_MIN, Z_MAX = 0.01, 0.8

# class: (M_r mean, M_r sigma, K-correction slope, R0 kpc at M0, M0, size-luminosity slope)
_LUMINOSITY = {
    "elliptical": (-21.6, 0.7, 1.2, 4.0, -21.5, 0.6),
    "disk": (-21.0, 0.8, 0.7, 4.5, -21.0, 0.3),
    "spiral": (-21.2, 0.8, 0.5, 5.5, -21.0, 0.3),
    "irregular": (-20.6, 0.9, 0.3, 4.0, -20.5, 0.3),
}


@functools.lru_cache(maxsize=1)
def _z_inverse_cdf() -> tuple[np.ndarray, np.ndarray]:
  z = np.linspace(Z_MIN, Z_MAX, 2000)
  cdf = np.cumsum(distances.volume_weight(z))
  return cdf / cdf[-1], z


def draw_redshift_magnitude(rng: np.random.Generator, family: str,
                            r_range: tuple[float, float] = (R_MIN, R_MAX),
                            z_range: tuple[float, float] = (Z_MIN, Z_MAX)) -> tuple[float, float, float]:
  """(z, M_r, r) for a galaxy of `family` with r in `r_range` (AB, before extinction)."""
  r_min, r_max = r_range
  m_mean, m_sigma, k_slope = _LUMINOSITY[family][:3]
  cdf, zg = _z_inverse_cdf()
  for _ in range(200):
    z = np.interp(rng.random(256), cdf, zg)
    mabs = m_mean + m_sigma * np.clip(rng.standard_normal(256), -3, 3)
    r = mabs + distances.distance_modulus(z) + k_slope * z
    ok = np.flatnonzero((r >= r_min) & (r <= r_max) & (z >= z_range[0]) & (z <= z_range[1]))
    if ok.size:
      i = ok[0]
      return float(z[i]), float(mabs[i]), float(r[i])
  raise RuntimeError(f"no {family} with {r_min} <= r <= {r_max} in z range {z_range}")



def draw_size(rng: np.random.Generator, family: str, z: float, mabs: float,
              scatter_dex: float = 0.17) -> float:
  """Semi-major half-light radius, arcsec, clipped to 0.3-12."""
  _, _, _, r0, m0, slope = _LUMINOSITY[family]
  log_r = np.log10(r0) - 0.4 * slope * (mabs - m0) + scatter_dex * rng.standard_normal()
  return float(np.clip(10**log_r / distances.kpc_per_arcsec(z), 0.3, 12.0))


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


def _disk_axis_ratio(cos_i: float, q0: float = 0.15) -> float:
  """Apparent axis ratio of an oblate disk of intrinsic thickness q0 at inclination cos_i."""
  return float(np.sqrt(cos_i**2 * (1 - q0**2) + q0**2))


def _split(mag_r: float, fractions: list[float]) -> list[float]:
  return [mag_r - 2.5 * np.log10(f) for f in fractions]


def _base_truth(z, mabs, pa, q, hlr, n, bulge_fraction, subtype="", impostor=""):
  return dict(redshift=z, abs_mag_r=mabs, pa_deg=pa % 180.0, axis_ratio=q, hlr_arcsec=hlr,
              sersic_n=n, bulge_fraction=bulge_fraction, subtype=subtype, impostor_kind=impostor)


def _sersic(flux, n, hlr, q, pa, x=0.0, y=0.0):
  return Component("sersic", flux, dict(n=sersic_index(n), hlr=hlr, q=q, pa=pa, x=x, y=y))


def sersic_index(n: float) -> float:
  """Sersic indices come in steps of 0.1 (GalSim caches one radial table per n)."""
  return round(float(n), 1)


def elliptical(rng, ebv, r_range=(R_MIN, R_MAX)):
  z, mabs, r = draw_redshift_magnitude(rng, "elliptical", r_range)
  hlr = draw_size(rng, "elliptical", z, mabs, 0.15)
  n, q, pa = sersic_index(rng.uniform(3.0, 5.5)), rng.uniform(0.5, 1.0), rng.uniform(0, 180)
  gr, rz = red_colours(rng, z)
  comps = [_sersic(band_fluxes(r, gr, rz, ebv), n, hlr, q, pa)]
  return comps, _base_truth(z, mabs, pa, q, hlr, n, 1.0)


def _bulge_disk(rng, ebv, family, cos_i, bt_range, r_range=(R_MIN, R_MAX)):
  """A red de Vaucouleurs-like bulge and what the disk needs: (z, M_r, hlr, pa, B/T, q, bulge,
  (total r, disk r, disk g-r, disk r-z))."""
  z, mabs, r = draw_redshift_magnitude(rng, family, r_range)
  hlr = draw_size(rng, family, z, mabs)
  pa = rng.uniform(0, 180)
  bt = rng.uniform(*bt_range)
  q = _disk_axis_ratio(cos_i)
  mb, md = _split(r, [max(bt, 1e-3), 1 - bt])
  grb, rzb = red_colours(rng, z)
  grd, rzd = disk_colours(rng, z)
  bulge = _sersic(band_fluxes(mb, grb, rzb, ebv), rng.uniform(2.5, 4.0),
                  max(0.25, hlr * rng.uniform(0.15, 0.3)), rng.uniform(0.7, 1.0) * max(q, 0.6), pa)
  return z, mabs, hlr, pa, bt, q, bulge, (r, md, grd, rzd)


def smooth_disk(rng, ebv, r_range=(R_MIN, R_MAX)):
  cos_i = rng.uniform(0.3, 1.0)
  z, mabs, hlr, pa, bt, q, bulge, (_, md, grd, rzd) = _bulge_disk(rng, ebv, "disk", cos_i, (0.1, 0.5),
                                                                     r_range=r_range)
  disk = _sersic(band_fluxes(md, grd, rzd, ebv), 1.0, hlr, q, pa)
  return [bulge, disk], _base_truth(z, mabs, pa, q, hlr, 1.0 + 3.0 * bt, bt)


def edge_on_disk(rng, ebv, r_range=(R_MIN, R_MAX)):
  z, mabs, r = draw_redshift_magnitude(rng, "disk", r_range)
  hlr = draw_size(rng, "disk", z, mabs)
  pa, bt = rng.uniform(0, 180), rng.uniform(0.0, 0.25)
  q = rng.uniform(0.1, 0.25)  # second-moment axis ratio of the disk before the PSF
  h = rng.uniform(0.08, 0.15)  # GalSim scale_h_over_r: sech^2 scale height / scale length
  # Moments of exp(-R / r_s) sech^2(z / h_s): <x^2> = 3 r_s^2, <z^2> = (pi^2 / 12) h_s^2, so
  # q^2 = cos^2 i + (pi^2 / 36) (h_s / r_s)^2 sin^2 i.
  c = np.pi**2 / 36
  cos_i = np.sqrt(max(q * q - c * h * h, 1e-6) / (1 - c * h * h))
  mb, md = _split(r, [max(bt, 1e-3), 1 - bt])
  grb, rzb = red_colours(rng, z)
  grd, rzd = disk_colours(rng, z)
  bulge = _sersic(band_fluxes(mb, grb, rzb, ebv), 2.0, max(0.25, 0.2 * hlr), rng.uniform(0.5, 0.8), pa)
  disk = Component("inclined_exp", band_fluxes(md, grd + 0.1, rzd + 0.08, ebv),
                   dict(hlr=hlr, inclination_deg=float(np.rad2deg(np.arccos(cos_i))),
                        scale_height_ratio=h, pa=pa, x=0.0, y=0.0))
  return [bulge, disk], _base_truth(z, mabs, pa, q, hlr, 1.0 + 3.0 * bt, bt)


def _spiral_components(rng, ebv, *, barred=False, tight=False, family="spiral", r_range=(R_MIN, R_MAX)):
  cos_i = rng.uniform(0.55, 1.0)
  bt_range = (0.25, 0.55) if tight else (0.05, 0.3)
  z, mabs, hlr, pa, bt, q, bulge, (r, _, grd, rzd) = _bulge_disk(rng, ebv, family, cos_i, bt_range,
                                                                  r_range=r_range)
  arm_frac = rng.uniform(0.25, 0.5)
  comps = [bulge]
  grs, rzs = blue_colours(rng, z)
  r_d = hlr / 1.678
  bar_frac = rng.uniform(0.08, 0.18) if barred else 0.0
  # fractions of the total light: smooth disk, arms (the bar comes out of the smooth disk)
  fr = np.array([(1 - bt) * (1 - arm_frac) - bar_frac, (1 - bt) * arm_frac])
  m_disk, m_arm = _split(r, list(fr))
  comps.append(_sersic(band_fluxes(m_disk, grd, rzd, ebv), 1.0, hlr, q, pa))
  n_arms = 2 if (barred or rng.random() < 0.7) else int(rng.integers(3, 5))
  phase = rng.uniform(0, 2 * np.pi)
  r_in = max(0.4, bulge.params["hlr"] * 1.5)
  if barred:
    bar_len = hlr * rng.uniform(0.5, 0.9)  # face-on half-length, arcsec; the arms start there
    theta = phase / n_arms  # arm k = 0 starts at this galaxy-frame angle from the major axis
    proj = np.hypot(np.cos(theta), q * np.sin(theta))
    bar_pa = pa + np.rad2deg(np.arctan2(q * np.sin(theta), np.cos(theta)))
    gr_bar, _ = red_colours(rng, z)
    m_bar = m_disk - 2.5 * np.log10(bar_frac / fr[0])
    comps.append(_sersic(band_fluxes(m_bar, gr_bar - 0.1, rzd + 0.1, ebv), 0.5,
                         bar_len * proj * 0.6, rng.uniform(0.2, 0.35), bar_pa))
    r_in = bar_len
  pitch = rng.uniform(6.0, 11.0) if tight else rng.uniform(12.0, 25.0)
  arms = Component("structure", band_fluxes(m_arm, grs, rzs, ebv), dict(
      pattern="spiral", q=q, pa=pa, r_d=r_d * 1.1, n_arms=n_arms, pitch_deg=pitch, phase=phase,
      chirality=int(rng.choice([-1, 1])), r_in=r_in, sharpness=float(rng.uniform(2.5, 5.0)),
      irregularity=float(rng.uniform(0.2, 1.0)),
      clumps=int(rng.integers(8, 25)), clump_sigma=float(rng.uniform(0.12, 0.25)),
      seed=int(rng.integers(2**31)), half_size=float(min(4.5 * hlr, 19.0)), x0=0.0, y0=0.0))
  comps.append(arms)
  truth = _base_truth(z, mabs, pa, q, hlr, 1.0 + 3.0 * bt, bt)
  truth.update(n_arms=n_arms, pitch_deg=pitch, has_bar=barred)
  return comps, truth


def face_on_spiral(rng, ebv, r_range=(R_MIN, R_MAX)):
  return _spiral_components(rng, ebv, r_range=r_range)


def barred_spiral(rng, ebv, r_range=(R_MIN, R_MAX)):
  return _spiral_components(rng, ebv, barred=True, r_range=r_range)


def irregular_merger(rng, ebv, r_range=(R_MIN, R_MAX)):
  if rng.random() < 0.5:
    z, mabs, r = draw_redshift_magnitude(rng, "irregular", r_range)
    hlr = draw_size(rng, "irregular", z, mabs)
    pa, q = rng.uniform(0, 180), rng.uniform(0.4, 1.0)
    gr, rz = blue_colours(rng, z)
    comp = Component("structure", band_fluxes(r, gr, rz, ebv), dict(
        pattern="clumps", q=q, pa=pa, radius=hlr * 0.7, count=int(rng.integers(6, 16)),
        sigma=float(rng.uniform(0.15, 0.35)), diffuse=float(rng.uniform(0.3, 0.6)),
        seed=int(rng.integers(2**31)), half_size=float(min(5 * hlr, 19.0)), x0=0.0, y0=0.0))
    return [comp], _base_truth(z, mabs, pa, q, hlr, 1.0, 0.0, subtype="irregular")
  z, mabs, r = draw_redshift_magnitude(rng, "disk", r_range)
  hlr = draw_size(rng, "disk", z, mabs)
  ratio = rng.uniform(0.3, 1.0)  # flux ratio secondary / primary
  m1, m2, mt = _split(r, [1 / (1 + ratio) * 0.85, ratio / (1 + ratio) * 0.85, 0.15])
  sep = hlr * rng.uniform(0.8, 2.0)
  ang = rng.uniform(0, 2 * np.pi)
  dx, dy = sep * np.cos(ang), sep * np.sin(ang)
  pa = rng.uniform(0, 180)
  q = rng.uniform(0.4, 0.9)
  gr1, rz1 = disk_colours(rng, z) if rng.random() < 0.5 else red_colours(rng, z)
  gr2, rz2 = blue_colours(rng, z)
  n1 = sersic_index(rng.uniform(1.0, 4.0))
  comps = [
      _sersic(band_fluxes(m1, gr1, rz1, ebv), n1, hlr, q, pa, -dx / 2, -dy / 2),
      _sersic(band_fluxes(m2, gr2, rz2, ebv), rng.uniform(0.8, 2.5), hlr * np.sqrt(ratio),
              rng.uniform(0.4, 0.9), rng.uniform(0, 180), dx / 2, dy / 2),
      Component("structure", band_fluxes(mt, (gr1 + gr2) / 2, (rz1 + rz2) / 2, ebv), dict(
          pattern="tail", pa=float(np.rad2deg(ang) - 90 + 180 * rng.integers(0, 2)),
          r_start=hlr * 0.5, r_end=float(min(hlr * rng.uniform(3, 6), 15.0)),
          bend_deg=float(rng.uniform(-90, 90)), width=float(max(0.3, 0.35 * hlr)),
          half_size=float(min(hlr * 7, 19.0)), x0=float(-dx / 2), y0=float(-dy / 2))),
  ]
  truth = _base_truth(z, mabs, pa, q, hlr, n1, 0.0, subtype="merger")
  truth.update(merger_separation_arcsec=sep, merger_flux_ratio=ratio)
  return comps, truth


def strong_lens(rng, ebv, r_range=(R_MIN, R_MAX)):
  z, mabs, r = draw_redshift_magnitude(rng, "elliptical", r_range, z_range=(0.15, 0.8))
  theta_e = float(np.exp(rng.uniform(np.log(0.8), np.log(3.0))))
  hlr = float(np.clip(draw_size(rng, "elliptical", z, mabs, 0.15), 0.5 * theta_e, 2.5 * theta_e))
  n, q, pa = sersic_index(rng.uniform(3.0, 5.0)), rng.uniform(0.6, 1.0), rng.uniform(0, 180)
  gr, rz = red_colours(rng, z)
  lens = dict(theta_e=theta_e, q=float(np.clip(q + rng.normal(0, 0.05), 0.5, 0.98)),
              pa=float(pa + rng.normal(0, 10)), gamma=float(rng.uniform(0.0, 0.1)),
              gamma_angle=float(rng.uniform(0, 180)))
  # Source-plane offset uniform in area within 0.4 theta_E: mostly arcs and rings (mu ~ 5-30),
  # as in the lenses found in DR9 (Huang et al. 2020), rather than faint doubles.
  beta = theta_e * 0.4 * np.sqrt(rng.random())
  b_ang = rng.uniform(0, 2 * np.pi)
  source = dict(x0=float(beta * np.cos(b_ang)), y0=float(beta * np.sin(b_ang)),
                n=float(rng.uniform(0.7, 1.5)), hlr=float(rng.uniform(0.2, 0.6)),
                q=float(rng.uniform(0.5, 1.0)), pa_deg=float(rng.uniform(0, 180)))
  scale = 0.262 / 4
  image, mu = lensing.ray_trace(lens, source, scale, theta_e * 1.6 + 1.5)
  lensed_r = rng.uniform(19.0, 21.5)
  source_r = lensed_r + 2.5 * np.log10(mu)
  gs, rs = 0.2 + 0.15 * rng.standard_normal(), 0.2 + 0.15 * rng.standard_normal()
  deflector = _sersic(band_fluxes(r, gr, rz, ebv), n, hlr, q, pa)
  arc = Component("image", band_fluxes(lensed_r, gs, rs, ebv),
                  dict(pixels=(image / image.sum()).astype(np.float64), scale=scale, x=0.0, y=0.0))
  truth = _base_truth(z, mabs, pa, q, hlr, n, 1.0)
  truth.update(theta_e_arcsec=theta_e, magnification=mu, source_mag_r=source_r,
               lensed_source_mag_r=lensed_r, lens_mass_q=lens["q"], lens_mass_pa_deg=lens["pa"] % 180,
               shear_gamma=lens["gamma"], shear_angle_deg=lens["gamma_angle"],
               source_x_arcsec=source["x0"], source_y_arcsec=source["y0"], source_hlr_arcsec=source["hlr"])
  # The target's magnitudes are the deflector's (the arc is recorded apart).
  return [deflector, arc], truth


def lens_impostor(rng, ebv, r_range=(R_MIN, R_MAX)):
  kind = classes.IMPOSTOR_KINDS[int(rng.integers(len(classes.IMPOSTOR_KINDS)))]
  if kind == "tight_spiral":
    comps, truth = _spiral_components(rng, ebv, tight=True, r_range=r_range)
  elif kind == "star_halo":
    maker = elliptical if rng.random() < 0.5 else smooth_disk
    comps, truth = maker(rng, ebv, r_range)
    truth["force_star_halo"] = True
  else:
    comps, truth = elliptical(rng, ebv, r_range)
    z, hlr, q, pa = truth["redshift"], truth["hlr_arcsec"], truth["axis_ratio"], truth["pa_deg"]
    r_host = -2.5 * np.log10(comps[0].flux[1]) + 22.5
    if kind == "ring_galaxy":
      radius = float(np.clip(hlr * rng.uniform(1.0, 2.5), 1.0, 4.0))
      frac = rng.uniform(0.3, 0.7)
      gr, rz = blue_colours(rng, z)
      feature = Component("structure", band_fluxes(r_host - 2.5 * np.log10(frac), gr, rz, ebv), dict(
          pattern="ring", q=float(rng.uniform(0.6, 1.0)), pa=float(rng.uniform(0, 180)), radius=radius,
          width=float(rng.uniform(0.15, 0.4)), clumps=int(rng.integers(0, 12)), clump_sigma=0.2,
          seed=int(rng.integers(2**31)), half_size=radius + 2.5, x0=0.0, y0=0.0))
    else:  # tidal_feature: shells or a long stream, host colours
      frac = rng.uniform(0.05, 0.15)
      gr, rz = red_colours(rng, z)
      base = dict(q=q, pa=pa, half_size=19.0, x0=0.0, y0=0.0)
      if rng.random() < 0.5:
        r0 = float(np.clip(hlr * 1.2, 1.5, 7.0))
        radii = tuple(float(r) for r in r0 * np.array([1.0, 1.5, 2.1]) if r < 16.0)
        feature_params = dict(base, pattern="shells", radii=radii,
                              width=float(rng.uniform(0.2, 0.4)), span_deg=float(rng.uniform(60, 140)))
      else:
        feature_params = dict(base, pattern="tail", pa=float(rng.uniform(0, 360)), r_start=hlr,
                              r_end=float(min(hlr * rng.uniform(4, 8), 17.0)),
                              bend_deg=float(rng.uniform(-120, 120)), width=float(rng.uniform(0.4, 0.8)))
      feature = Component("structure", band_fluxes(r_host - 2.5 * np.log10(frac), gr, rz, ebv),
                          feature_params)
    comps = comps + [feature]
  truth["impostor_kind"] = kind
  return comps, truth


MAKERS = {
    "elliptical": elliptical,
    "smooth_disk": smooth_disk,
    "edge_on_disk": edge_on_disk,
    "face_on_spiral": face_on_spiral,
    "barred_spiral": barred_spiral,
    "irregular_merger": irregular_merger,
    "strong_lens": strong_lens,
    "lens_impostor": lens_impostor,
}


def draw_target(rng: np.random.Generator, class_name: str, ebv: float,
                r_range: tuple[float, float] = (R_MIN, R_MAX)) -> tuple[list[Component], dict]:
  """The stamp's central object: its components and scalar truth (including `mag_g/r/z`).

  `r_range` bounds the target's r magnitude before extinction (default 16.5-21, the ssl sample's
  bright end to its r < 21 cut; e.g. (16.5, 18) gives big, bright galaxies for a gallery).
  """
  comps, truth = MAKERS[class_name](rng, ebv, r_range)
  target = [c for c in comps if not (class_name == "strong_lens" and c.kind == "image")]
  mags = total_magnitudes(target)
  truth.update(mag_g=mags[0], mag_r=mags[1], mag_z=mags[2])
  return comps, truth
