"""Disk galaxies with structure: bulge + disk, spiral arms, bars, rings, clumps, dust lanes, mergers.

Smooth light is GalSim (Sersic bulges and disks, `InclinedExponential` edge-on disks); what
GalSim has no profile for is drawn by hand in `structures` (arms, rings, clumps, tails, shells)
and `dust` (lanes), then handed to GalSim as an `InterpolatedImage` and convolved with the PSF
like the rest. Each structure is recorded in the truth.

Observed distributions the draws follow (approximate, quoted from the papers):
- Number of arms: Galaxy Zoo 2 arm counts (Hart et al. 2016, MNRAS 461, 3663): two arms are
  the most common, then three, four, one and many; weights 1: 0.05, 2: 0.55, 3: 0.22, 4: 0.12,
  5: 0.06. Barred spirals have two (bar-driven) arms.
- Pitch angle: Normal, mean ~20 deg, sigma ~6 deg, within 6-40 deg (Hart et al. 2017,
  MNRAS 472, 2263; Yu & Ho 2019, ApJ 871, 194), tighter for larger bulges (Yu et al. 2018):
  mean 24 - 20 (B/T - 0.15).
- Arm strength: the share of the disk's light in the arms, lognormal, median 0.3, 0.15 dex,
  within 0.12-0.6; for the cos^s arm profile used it is close to the relative m = n_arms Fourier
  amplitude, whose range in nearby spirals is ~0.1-0.6 (Yu et al. 2018, ApJ 862, 13).
- Lopsidedness: the arms' m = 1 amplitude A1, exponential with mean 0.2, <= 0.6 (a third of
  disks have A1 > 0.1 in the near-infrared, more in the optical; Bournaud et al. 2005).
- Bars: strong bars in ~30 % of disks (Masters et al. 2011); here the barred class, half-length
  0.5-0.9 disk half-light radii. Inner rings at the bar's end in 30 % of barred and 8 % of
  unbarred spirals (Comeron et al. 2014, ARRAKIS: inner rings in 20-35 % of disks).
- Dust lanes in 75 % of edge-on disks (massive edge-on disks nearly all show one, Dalcanton
  et al. 2004), edge-on midplane tau_r lognormal with median 12, 4-30 (Xilouris et al. 1999: edge-on tau_V
  ~20-40; see `dust`).
- Mergers: two galaxies 0.8-2 half-light radii apart with tidal tails from each (Toomre &
  Toomre 1972), and shells about the primary in 30 % of them.
"""

from __future__ import annotations

import numpy as np

from lvm_jax.sim import dust
from lvm_jax.sim.components import Component, band_fluxes
from lvm_jax.sim.scaling import (Selection, base_truth, blue_colours, disk_axis_ratio, disk_colours,
                                 draw_galaxy, red_colours, sersic, sersic_index, split)

ARM_COUNT_WEIGHTS = {1: 0.05, 2: 0.55, 3: 0.22, 4: 0.12, 5: 0.06}
DUST_LANE_PROBABILITY = 0.75
SHELL_PROBABILITY = 0.3


def _bulge_disk(rng, ebv, family, cos_i, bt_range, sel: Selection):
  """A red de Vaucouleurs-like bulge and what the disk needs: (z, M_r, hlr, pa, B/T, q, bulge,
  (total r, disk r, disk g-r, disk r-z))."""
  z, mabs, r, hlr = draw_galaxy(rng, family, sel)
  pa = rng.uniform(0, 180)
  bt = rng.uniform(*bt_range)
  q = disk_axis_ratio(cos_i)
  mb, md = split(r, [max(bt, 1e-3), 1 - bt])
  grb, rzb = red_colours(rng, z)
  grd, rzd = disk_colours(rng, z)
  bulge = sersic(band_fluxes(mb, grb, rzb, ebv), rng.uniform(2.5, 4.0),
                 max(0.25, hlr * rng.uniform(0.15, 0.3)), rng.uniform(0.7, 1.0) * max(q, 0.6), pa)
  return z, mabs, hlr, pa, bt, q, bulge, (r, md, grd, rzd)


def smooth_disk(rng, ebv, sel: Selection):
  cos_i = rng.uniform(0.3, 1.0)
  z, mabs, hlr, pa, bt, q, bulge, (_, md, grd, rzd) = _bulge_disk(rng, ebv, "disk", cos_i, (0.1, 0.5), sel)
  disk = sersic(band_fluxes(md, grd, rzd, ebv), 1.0, hlr, q, pa)
  return [bulge, disk], base_truth(z, mabs, pa, q, hlr, 1.0 + 3.0 * bt, bt)


def edge_on_disk(rng, ebv, sel: Selection, dust_probability: float = DUST_LANE_PROBABILITY):
  """A bulge and an `InclinedExponential` disk seen nearly edge-on, most with a dust lane.

  The lane is one `absorption` component per band (negative flux, `dust`), so `mag_*` truth is
  the attenuated total; `dust_lane_tau` is the lane's edge-on midplane r-band optical depth.
  """
  z, mabs, r, hlr = draw_galaxy(rng, "disk", sel)
  pa, bt = rng.uniform(0, 180), rng.uniform(0.05, 0.35)
  q = rng.uniform(0.12, 0.3)  # second-moment axis ratio of the disk before the PSF
  h = rng.uniform(0.1, 0.18)  # GalSim scale_h_over_r: sech^2 scale height / scale length
  # Moments of exp(-R / r_s) sech^2(z / h_s): <x^2> = 3 r_s^2, <z^2> = (pi^2 / 12) h_s^2, so
  # q^2 = cos^2 i + (pi^2 / 36) (h_s / r_s)^2 sin^2 i.
  c = np.pi**2 / 36
  cos_i = np.sqrt(max(q * q - c * h * h, 1e-6) / (1 - c * h * h))
  mb, md = split(r, [max(bt, 1e-3), 1 - bt])
  grb, rzb = red_colours(rng, z)
  grd, rzd = disk_colours(rng, z)
  # A rounder, bigger bulge than a face-on disk's: the lane crossing it is what shows at DR9 seeing.
  bulge = sersic(band_fluxes(mb, grb, rzb, ebv), 2.0, max(0.4, hlr * rng.uniform(0.25, 0.4)),
                 rng.uniform(0.55, 0.85), pa)
  disk_flux = band_fluxes(md, grd + 0.1, rzd + 0.08, ebv)
  disk = Component("inclined_exp", disk_flux,
                   dict(hlr=hlr, inclination_deg=float(np.rad2deg(np.arccos(cos_i))),
                        scale_height_ratio=h, pa=pa, x=0.0, y=0.0))
  comps = [bulge, disk]
  tau = float(np.clip(12.0 * rng.lognormal(0.0, 0.4), 4.0, 30.0)) if rng.random() < dust_probability else 0.0
  if tau > 0:
    comps += dust_lane(disk, bulge, tau, sel)
  truth = base_truth(z, mabs, pa, q, hlr, 1.0 + 3.0 * bt, bt)
  truth.update(has_dust_lane=tau > 0, dust_lane_tau=tau)
  return comps, truth


def dust_lane(disk: Component, bulge: Component, tau_r: float, sel: Selection,
              scale: float = 0.131) -> list[Component]:
  """The light a lane of midplane optical depth `tau_r` absorbs from `disk` and `bulge` (both
  centred): three components (g, r, z), each of negative flux in its band only, unit-flux
  pixels at `scale` arcsec/px."""
  half = float(min(4.0 * disk.params["hlr"] + 1.0, sel.pattern_half_size))
  absorbed, images = dust.absorption(disk.params, disk.flux, bulge.params, bulge.flux, tau_r, scale, half)
  out = []
  for b in range(3):
    flux = np.zeros(3)
    flux[b] = -absorbed[b]
    out.append(Component("absorption", flux, dict(pixels=images[b], scale=scale, x=0.0, y=0.0)))
  return out


def draw_arm_count(rng: np.random.Generator) -> int:
  counts = np.array(list(ARM_COUNT_WEIGHTS))
  weights = np.array(list(ARM_COUNT_WEIGHTS.values()))
  return int(rng.choice(counts, p=weights / weights.sum()))


def spiral(rng, ebv, sel: Selection, *, barred=False, tight=False, family="spiral"):
  """A bulge, a smooth exponential disk, logarithmic arms with star-forming clumps, maybe a bar
  and an inner ring. `tight` (an impostor of lens arcs): big bulge, tightly wound arms."""
  cos_i = rng.uniform(0.55, 1.0)
  bt_range = (0.25, 0.55) if tight else (0.05, 0.3)
  z, mabs, hlr, pa, bt, q, bulge, (r, _, grd, rzd) = _bulge_disk(rng, ebv, family, cos_i, bt_range, sel)
  arm_strength = float(np.clip(0.3 * 10 ** (0.15 * rng.standard_normal()), 0.12, 0.6))
  comps = [bulge]
  grs, rzs = blue_colours(rng, z)
  r_d = hlr / 1.678
  bar_frac = rng.uniform(0.08, 0.18) if barred else 0.0
  # fractions of the total light: smooth disk, arms (the bar comes out of the smooth disk)
  fr = np.array([(1 - bt) * (1 - arm_strength) - bar_frac, (1 - bt) * arm_strength])
  m_disk, m_arm = split(r, list(fr))
  comps.append(sersic(band_fluxes(m_disk, grd, rzd, ebv), 1.0, hlr, q, pa))
  n_arms = 2 if barred else draw_arm_count(rng)
  phase = rng.uniform(0, 2 * np.pi)
  r_in = max(0.4, bulge.params["hlr"] * 1.5)
  half = float(min(4.5 * hlr, sel.pattern_half_size))
  bar_len = np.nan
  if barred:
    bar_len = hlr * rng.uniform(0.5, 0.9)  # face-on half-length, arcsec; the arms start there
    theta = phase / n_arms  # arm k = 0 starts at this galaxy-frame angle from the major axis
    proj = np.hypot(np.cos(theta), q * np.sin(theta))
    bar_pa = pa + np.rad2deg(np.arctan2(q * np.sin(theta), np.cos(theta)))
    gr_bar, _ = red_colours(rng, z)
    m_bar = m_disk - 2.5 * np.log10(bar_frac / fr[0])
    comps.append(sersic(band_fluxes(m_bar, gr_bar - 0.1, rzd + 0.1, ebv), 0.5,
                        bar_len * proj * 0.6, rng.uniform(0.2, 0.35), bar_pa))
    r_in = bar_len
  if tight:
    pitch = rng.uniform(6.0, 11.0)
  else:
    pitch = float(np.clip(rng.normal(24.0 - 20.0 * (bt - 0.15), 6.0), 6.0, 40.0))
  n_clumps = int(rng.integers(8, 25))
  lopsided = float(min(rng.exponential(0.35), 0.9))
  comps.append(Component("structure", band_fluxes(m_arm, grs, rzs, ebv), dict(
      pattern="spiral", q=q, pa=pa, r_d=r_d * 1.1, n_arms=n_arms, pitch_deg=pitch, phase=phase,
      chirality=int(rng.choice([-1, 1])), r_in=r_in, sharpness=float(rng.uniform(2.5, 5.0)),
      irregularity=float(rng.uniform(0.2, 1.0)), clumps=n_clumps, lopsidedness=lopsided,
      clump_sigma=float(rng.uniform(0.2, 0.4)), seed=int(rng.integers(2**31)), half_size=half,
      x0=0.0, y0=0.0)))
  has_ring = (not tight) and rng.random() < (0.3 if barred else 0.08)
  if has_ring:  # an inner ring at the bar's end (or at the arms' start), taken from the arms' light
    ring_frac = rng.uniform(0.15, 0.3)
    comps[-1].flux = comps[-1].flux * (1 - ring_frac)
    comps.append(Component("structure", comps[-1].flux / (1 - ring_frac) * ring_frac, dict(
        pattern="ring", q=q, pa=pa, radius=float(max(r_in, 0.8)), width=float(rng.uniform(0.15, 0.3)),
        clumps=int(rng.integers(0, 8)), clump_sigma=0.15, seed=int(rng.integers(2**31)),
        half_size=float(min(max(r_in, 0.8) + 2.5, sel.pattern_half_size)), x0=0.0, y0=0.0)))
  truth = base_truth(z, mabs, pa, q, hlr, 1.0 + 3.0 * bt, bt)
  truth.update(n_arms=n_arms, pitch_deg=pitch, arm_strength=arm_strength, has_bar=barred,
               bar_length_arcsec=bar_len, has_ring=has_ring, n_clumps=n_clumps, lopsidedness=lopsided)
  return comps, truth


def face_on_spiral(rng, ebv, sel: Selection):
  return spiral(rng, ebv, sel)


def barred_spiral(rng, ebv, sel: Selection):
  return spiral(rng, ebv, sel, barred=True)


def irregular(rng, ebv, sel: Selection):
  """Clumpy star-forming light (a random walk of clumps) on a diffuse exponential."""
  z, mabs, r, hlr = draw_galaxy(rng, "irregular", sel)
  pa, q = rng.uniform(0, 180), rng.uniform(0.4, 1.0)
  gr, rz = blue_colours(rng, z)
  count = int(rng.integers(6, 16))
  comp = Component("structure", band_fluxes(r, gr, rz, ebv), dict(
      pattern="clumps", q=q, pa=pa, radius=hlr * 0.7, count=count,
      sigma=float(rng.uniform(0.25, 0.5)), diffuse=float(rng.uniform(0.5, 0.8)),
      seed=int(rng.integers(2**31)), half_size=float(min(5 * hlr, sel.pattern_half_size)), x0=0.0, y0=0.0))
  truth = base_truth(z, mabs, pa, q, hlr, 1.0, 0.0, subtype="irregular")
  truth.update(n_clumps=count)
  return [comp], truth


def _tail(flux, pa, r_start, r_end, bend, width, x0, y0, sel: Selection) -> Component:
  """A tidal tail from (x0, y0) arcsec; drawn over the square that holds it (its width grows to
  2.5 `width` at the end)."""
  r_end = float(min(r_end, sel.pattern_half_size))
  return Component("structure", flux, dict(
      pattern="tail", pa=float(pa), r_start=float(r_start), r_end=r_end, bend_deg=float(bend),
      width=float(width), half_size=float(min(r_end + 8.0 * width, sel.pattern_half_size)),
      x0=float(x0), y0=float(y0)))


def merger(rng, ebv, sel: Selection):
  """An interacting pair: two galaxies with a tidal tail from each (opposite sides, bent the same
  way, as in a prograde encounter) and, in some, shells about the primary."""
  z, mabs, r, hlr = draw_galaxy(rng, "disk", sel)
  ratio = rng.uniform(0.3, 1.0)  # flux ratio secondary / primary
  m1, m2, mt = split(r, [1 / (1 + ratio) * 0.75, ratio / (1 + ratio) * 0.75, 0.25])
  sep = hlr * rng.uniform(0.8, 2.0)
  ang = rng.uniform(0, 2 * np.pi)
  dx, dy = sep * np.cos(ang), sep * np.sin(ang)
  pa = rng.uniform(0, 180)
  q = rng.uniform(0.4, 0.9)
  gr1, rz1 = disk_colours(rng, z) if rng.random() < 0.5 else red_colours(rng, z)
  gr2, rz2 = blue_colours(rng, z)
  n1 = sersic_index(rng.uniform(1.0, 4.0))
  tail_gr, tail_rz = (gr1 + gr2) / 2, (rz1 + rz2) / 2
  bend = float(rng.uniform(40, 110) * rng.choice([-1, 1]))
  side = float(np.rad2deg(ang) - 90 + 180 * rng.integers(0, 2))
  has_shells = rng.random() < SHELL_PROBABILITY
  tail_share = 0.65 if has_shells else 1.0
  m_t1, m_t2 = split(mt, [0.6 * tail_share, 0.4 * tail_share])
  comps = [
      sersic(band_fluxes(m1, gr1, rz1, ebv), n1, hlr, q, pa, -dx / 2, -dy / 2),
      sersic(band_fluxes(m2, gr2, rz2, ebv), rng.uniform(0.8, 2.5), hlr * np.sqrt(ratio),
             rng.uniform(0.4, 0.9), rng.uniform(0, 180), dx / 2, dy / 2),
      _tail(band_fluxes(m_t1, tail_gr, tail_rz, ebv), side, hlr * 0.5, hlr * rng.uniform(3, 6), bend,
            max(0.3, 0.25 * hlr), -dx / 2, -dy / 2, sel),
      _tail(band_fluxes(m_t2, gr2, rz2, ebv), side + 180.0, hlr * 0.4 * np.sqrt(ratio),
            hlr * rng.uniform(2, 4.5), bend, max(0.3, 0.2 * hlr), dx / 2, dy / 2, sel),
  ]
  if has_shells:
    m_sh = split(mt, [1 - tail_share])[0]
    comps.append(shells(band_fluxes(m_sh, gr1, rz1, ebv), hlr, q, pa, -dx / 2, -dy / 2, rng, sel))
  truth = base_truth(z, mabs, pa, q, hlr, n1, 0.0, subtype="merger")
  truth.update(merger_separation_arcsec=sep, merger_flux_ratio=ratio, n_tails=2, has_shells=has_shells)
  return comps, truth


def shells(flux, hlr, q, pa, x0, y0, rng, sel: Selection) -> Component:
  """Interleaved shells about a host of half-light radius `hlr` (a minor merger's debris)."""
  r0 = float(np.clip(hlr * 1.2, 1.5, 7.0))
  radii = tuple(float(r) for r in r0 * np.array([1.0, 1.5, 2.1]) if r < sel.pattern_half_size - 3.0)
  return Component("structure", flux, dict(
      pattern="shells", q=q, pa=pa, radii=radii or (r0,), width=float(rng.uniform(0.2, 0.4)),
      span_deg=float(rng.uniform(60, 140)), half_size=float(sel.pattern_half_size),
      x0=float(x0), y0=float(y0)))


def irregular_merger(rng, ebv, sel: Selection):
  return irregular(rng, ebv, sel) if rng.random() < 0.5 else merger(rng, ebv, sel)
