"""Strong lenses a person can see, and the galaxies a lens search confuses with them (impostors).

A strong lens is a red early-type deflector (GalSim Sersic) and an extended blue source lensed
by an SIE + external shear (`lensing.ray_trace`, NumPy): a Sersic with 0-4 star-forming clumps,
so arcs are knotty as in real lensed galaxies. Einstein radii are log-uniform in the
selection's `theta_e_range` (1.2-3" for the visible-lens presets: at DR9 seeing, ~1.0-1.3",
smaller rings blend with the deflector; 0.8-3" by default) and their arcs r = 18-20.5
(19-21.5 by default). The source sits within 0.4 theta_E
of the caustic centre (uniform in area), so most lenses are arcs and rings (magnification
~5-30), as in the lenses found in DR9 (Huang et al. 2020, ApJ 894, 78). The deflector-subtracted
residual of any stamp (the arc, neighbours and noise) is `survey.deflector_subtracted`.

Impostors (`classes.IMPOSTOR_KINDS`): ring galaxies, tightly wound spirals with big bulges,
ellipticals with tidal streams or shells, bright-star halos, mergers and dusty edge-on disks.
"""

from __future__ import annotations

import numpy as np

from lvm_jax.sim import classes, lensing, morphology
from lvm_jax.sim.components import Component, band_fluxes
from lvm_jax.sim.scaling import (Selection, base_truth, blue_colours, draw_galaxy, red_colours, sersic,
                                 sersic_index)

ARC_SCALE = 0.262 / 4  # arcsec/px of the ray-traced source image


def elliptical(rng, ebv, sel: Selection):
  z, mabs, r, hlr = draw_galaxy(rng, "elliptical", sel, 0.15)
  n, q, pa = sersic_index(rng.uniform(3.0, 5.5)), rng.uniform(0.5, 1.0), rng.uniform(0, 180)
  gr, rz = red_colours(rng, z)
  comps = [sersic(band_fluxes(r, gr, rz, ebv), n, hlr, q, pa)]
  return comps, base_truth(z, mabs, pa, q, hlr, n, 1.0)


def lensed_source(rng, theta_e: float) -> dict:
  """Source-plane Sersic + clumps: position (arcsec from the lens centre), shape and clumps
  ((k, 4): dx, dy from the source centre in arcsec, sigma arcsec, share of the source's flux)."""
  beta = theta_e * 0.4 * np.sqrt(rng.random())
  b_ang = rng.uniform(0, 2 * np.pi)
  hlr = float(rng.uniform(0.25, 0.7))
  k = int(rng.integers(0, 5))
  clumps = np.column_stack([rng.normal(0, hlr, (k, 2)), rng.uniform(0.05, 0.12, k),
                            rng.uniform(0.04, 0.1, k)]) if k else np.zeros((0, 4))
  return dict(x0=float(beta * np.cos(b_ang)), y0=float(beta * np.sin(b_ang)),
              n=float(rng.uniform(0.7, 1.5)), hlr=hlr, q=float(rng.uniform(0.5, 1.0)),
              pa_deg=float(rng.uniform(0, 180)), clumps=clumps)


def strong_lens(rng, ebv, sel: Selection):
  # A distant deflector (z > 0.15) unless the selection asks for big, hence near, galaxies.
  z_range = None if sel.size_selected else (0.15, 0.8)
  z, mabs, r, hlr = draw_galaxy(rng, "elliptical", sel, 0.15, z_range=z_range)
  lo, hi = sel.theta_e_range
  theta_e = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
  if not sel.size_selected:
    hlr = float(np.clip(hlr, 0.5 * theta_e, 2.5 * theta_e))
  n, q, pa = sersic_index(rng.uniform(3.0, 5.0)), rng.uniform(0.6, 1.0), rng.uniform(0, 180)
  gr, rz = red_colours(rng, z)
  lens = dict(theta_e=theta_e, q=float(np.clip(q + rng.normal(0, 0.05), 0.5, 0.98)),
              pa=float(pa + rng.normal(0, 10)), gamma=float(rng.uniform(0.0, 0.1)),
              gamma_angle=float(rng.uniform(0, 180)))
  source = lensed_source(rng, theta_e)
  image, mu = lensing.ray_trace(lens, source, ARC_SCALE, theta_e * 1.6 + 1.5)
  lensed_r = rng.uniform(*sel.lensed_mag_range)
  source_r = lensed_r + 2.5 * np.log10(mu)
  gs, rs = 0.2 + 0.15 * rng.standard_normal(), 0.2 + 0.15 * rng.standard_normal()
  deflector = sersic(band_fluxes(r, gr, rz, ebv), n, hlr, q, pa)
  arc = Component("image", band_fluxes(lensed_r, gs, rs, ebv),
                  dict(pixels=(image / image.sum()).astype(np.float64), scale=ARC_SCALE, x=0.0, y=0.0))
  truth = base_truth(z, mabs, pa, q, hlr, n, 1.0)
  truth.update(theta_e_arcsec=theta_e, magnification=mu, source_mag_r=source_r,
               lensed_source_mag_r=lensed_r, lens_mass_q=lens["q"], lens_mass_pa_deg=lens["pa"] % 180,
               shear_gamma=lens["gamma"], shear_angle_deg=lens["gamma_angle"],
               source_x_arcsec=source["x0"], source_y_arcsec=source["y0"], source_hlr_arcsec=source["hlr"],
               source_n_clumps=len(source["clumps"]))
  # The target's magnitudes are the deflector's (the arc is recorded apart).
  return [deflector, arc], truth


def _feature(rng, ebv, kind, truth, r_host, sel: Selection) -> Component:
  z, hlr, q, pa = truth["redshift"], truth["hlr_arcsec"], truth["axis_ratio"], truth["pa_deg"]
  if kind == "ring_galaxy":
    radius = float(np.clip(hlr * rng.uniform(1.0, 2.5), 1.0, 4.0))
    frac = rng.uniform(0.3, 0.7)
    gr, rz = blue_colours(rng, z)
    truth["has_ring"] = True
    return Component("structure", band_fluxes(r_host - 2.5 * np.log10(frac), gr, rz, ebv), dict(
        pattern="ring", q=float(rng.uniform(0.6, 1.0)), pa=float(rng.uniform(0, 180)), radius=radius,
        width=float(rng.uniform(0.15, 0.4)), clumps=int(rng.integers(0, 12)), clump_sigma=0.2,
        seed=int(rng.integers(2**31)), half_size=radius + 2.5, x0=0.0, y0=0.0))
  # tidal_feature: shells or a long stream, host colours
  flux = band_fluxes(r_host - 2.5 * np.log10(rng.uniform(0.05, 0.15)), *red_colours(rng, z), ebv)
  if rng.random() < 0.5:
    truth["has_shells"] = True
    return morphology.shells(flux, hlr, q, pa, 0.0, 0.0, rng, sel)
  truth["n_tails"] = 1
  return Component("structure", flux, dict(
      pattern="tail", pa=float(rng.uniform(0, 360)), r_start=hlr,
      r_end=float(min(hlr * rng.uniform(4, 8), sel.pattern_half_size - 2.0)),
      bend_deg=float(rng.uniform(-120, 120)), width=float(rng.uniform(0.4, 0.8)),
      half_size=float(sel.pattern_half_size), x0=0.0, y0=0.0))


def lens_impostor(rng, ebv, sel: Selection):
  kind = classes.IMPOSTOR_KINDS[int(rng.integers(len(classes.IMPOSTOR_KINDS)))]
  if kind == "tight_spiral":
    comps, truth = morphology.spiral(rng, ebv, sel, tight=True)
  elif kind == "star_halo":
    maker = elliptical if rng.random() < 0.5 else morphology.smooth_disk
    comps, truth = maker(rng, ebv, sel)
    truth["force_star_halo"] = True
  elif kind == "merger":
    comps, truth = morphology.merger(rng, ebv, sel)
  elif kind == "edge_on_disk":
    comps, truth = morphology.edge_on_disk(rng, ebv, sel, dust_probability=1.0)
  else:
    comps, truth = elliptical(rng, ebv, sel)
    r_host = -2.5 * np.log10(comps[0].flux[1]) + 22.5
    comps = comps + [_feature(rng, ebv, kind, truth, r_host, sel)]
  truth["impostor_kind"] = kind
  return comps, truth
