"""The simulated survey: N stamps with an ssl-legacysurvey catalogue and a truth table.

Galaxy i of a survey with seed s is drawn from its own generator `default_rng([s, i])`, so the
output does not depend on the number of workers or on which chunk a galaxy falls in.
"""

from __future__ import annotations

import multiprocessing
import sys
import os
from collections.abc import Mapping

import numpy as np

from lvm_jax.data import ssl_schema
from lvm_jax.sim import classes, field, observing, population, presets
from lvm_jax.sim.scaling import Selection, as_selection

R_RANGE = (population.R_MIN, population.R_MAX)
RELEASE = 9010  # DR9 south (DECam)
SIM_BRICKID_OFFSET = 1_000_000  # above every real DR9 brickid (< 662 175), so ids never collide
# Sky patches (deg): DES-area stamps in the equatorial stripe of the real cutouts, DECaLS north
# of it.
PATCHES = {"des": ((0.0, 13.0), (-1.3, 1.3)), "decals": ((150.0, 156.0), (0.0, 4.0))}

# Truth columns: name -> (numpy dtype, value when not applicable). Meanings:
# class_id / class_name (classes.CLASS_NAMES), subtype ("irregular" / "merger" for
# irregular_merger), impostor_kind (classes.IMPOSTOR_KINDS, lens impostors only).
# mag_g/r/z: AB magnitudes of the target (observed, incl. Galactic extinction; for a strong lens,
# the deflector alone, the arc is lensed_source_mag_r). redshift: the z-like parameter that sets
# distance modulus and angular size. sersic_n, hlr_arcsec (semi-major half-light radius of the
# truncated Sersic, or of the disk for bulge + disk galaxies), axis_ratio (b/a), pa_deg (degrees
# east of north, [0, 180), see lvm_jax.sim) describe the target's main component; for bulge +
# disk galaxies sersic_n = 1 + 3 bulge_fraction. Lens columns: theta_e_arcsec (SIE Einstein
# radius), magnification (lensed / unlensed source flux), arc_snr (see arc_snr), the SIE mass
# axis ratio and PA, external shear, source position (arcsec, source plane) and size.
# psf_fwhm_* (arcsec), depth_mag_* (5-sigma AB), sky_sigma_* (nanomaggies/px), ebv, region
# ("des" / "decals"): observing conditions. n_neighbours, n_stars, has_star_halo: the field.
# Structure (`morphology`): n_arms, pitch_deg, arm_strength (share of the disk light in the
# arms), lopsidedness (the arms' m = 1 amplitude), has_bar, bar_length_arcsec (face-on half-length), has_ring, n_clumps (star-forming
# clumps on arms or in irregulars), has_dust_lane, dust_lane_tau (edge-on midplane r-band optical
# depth; 0 for an edge-on disk without a lane), n_tails, has_shells; source_n_clumps (clumps of
# a lensed source); n_saturated_px (r-band pixels clipped at `observing.SATURATION_NMGY`).
TRUTH_COLUMNS = {
    "index": ("int64", -1), "class_id": ("int16", -1), "class_name": ("S16", b""),
    "subtype": ("S16", b""), "impostor_kind": ("S16", b""),
    "redshift": ("float32", np.nan), "abs_mag_r": ("float32", np.nan),
    "mag_g": ("float32", np.nan), "mag_r": ("float32", np.nan), "mag_z": ("float32", np.nan),
    "sersic_n": ("float32", np.nan), "hlr_arcsec": ("float32", np.nan),
    "axis_ratio": ("float32", np.nan), "pa_deg": ("float32", np.nan),
    "bulge_fraction": ("float32", np.nan), "n_arms": ("int16", 0), "pitch_deg": ("float32", np.nan),
    "has_bar": ("bool", False), "merger_separation_arcsec": ("float32", np.nan),
    "merger_flux_ratio": ("float32", np.nan),
    "theta_e_arcsec": ("float32", np.nan), "magnification": ("float32", np.nan),
    "arc_snr": ("float32", np.nan), "source_mag_r": ("float32", np.nan),
    "lensed_source_mag_r": ("float32", np.nan), "lens_mass_q": ("float32", np.nan),
    "lens_mass_pa_deg": ("float32", np.nan), "shear_gamma": ("float32", np.nan),
    "shear_angle_deg": ("float32", np.nan), "source_x_arcsec": ("float32", np.nan),
    "source_y_arcsec": ("float32", np.nan), "source_hlr_arcsec": ("float32", np.nan),
    "psf_fwhm_g": ("float32", np.nan), "psf_fwhm_r": ("float32", np.nan),
    "psf_fwhm_z": ("float32", np.nan), "depth_mag_g": ("float32", np.nan),
    "depth_mag_r": ("float32", np.nan), "depth_mag_z": ("float32", np.nan),
    "sky_sigma_g": ("float32", np.nan), "sky_sigma_r": ("float32", np.nan),
    "sky_sigma_z": ("float32", np.nan), "ebv": ("float32", np.nan), "region": ("S8", b""),
    "n_neighbours": ("int16", 0), "n_stars": ("int16", 0), "has_star_halo": ("bool", False),
    "halo_star_mag_r": ("float32", np.nan),
    "arm_strength": ("float32", np.nan), "bar_length_arcsec": ("float32", np.nan),
    "has_ring": ("bool", False), "n_clumps": ("int16", 0), "has_dust_lane": ("bool", False),
    "dust_lane_tau": ("float32", np.nan), "n_tails": ("int16", 0), "has_shells": ("bool", False),
    "source_n_clumps": ("int16", 0), "n_saturated_px": ("int32", 0),
    "lopsidedness": ("float32", np.nan),
}


def _source_type(truth: dict) -> bytes:
  if truth["hlr_arcsec"] < 0.4:
    return b"REX"
  n = truth["sersic_n"]
  return b"DEV" if n >= 3.0 else (b"EXP" if n <= 1.5 else b"SER")


def arc_snr(arc: np.ndarray, sky_sigma: np.ndarray) -> float:
  """Lensed-source S/N: per band, sum of the noiseless PSF-convolved arc over pixels where it
  exceeds the sky sigma, over sigma sqrt(n_pixels) (white-noise S/N); bands added in quadrature."""
  total = 0.0
  for b in range(3):
    mask = arc[b] > sky_sigma[b]
    if mask.any():
      total += (arc[b][mask].sum() / (sky_sigma[b] * np.sqrt(mask.sum()))) ** 2
  return float(np.sqrt(total))


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
  """The generator of galaxy `index` in survey `seed` (independent of chunking and workers)."""
  return np.random.default_rng([seed, index])


def choose_class(rng: np.random.Generator, probabilities: np.ndarray) -> str:
  """The first draw of a galaxy: its class name."""
  return classes.CLASS_NAMES[int(rng.choice(len(classes.CLASS_NAMES), p=probabilities))]


def simulate_galaxy(seed: int, index: int, probabilities: np.ndarray, stamp: int = ssl_schema.STAMP_SIZE,
                    pixel_scale: float = ssl_schema.PIXEL_SCALE_ARCSEC,
                    selection: Selection | tuple[float, float] = R_RANGE,
                    layers: bool = False) -> tuple[np.ndarray, dict, dict] | tuple[np.ndarray, dict, dict, dict]:
  """Stamp `index` of survey `seed`: image (3, stamp, stamp) float32 nanomaggies, catalogue row, truth.

  `probabilities` (len(CLASS_NAMES),) picks the class; `selection` (`scaling.Selection`, or an
  r range) bounds the target. With `layers`, also the noiseless (3, stamp, stamp) float64
  layers {"target", "stars", "neighbours", "arc" (strong lenses)}: e.g. image - target is the
  deflector-subtracted residual of a lens.
  """
  from lvm_jax.sim import render
  selection = as_selection(selection)
  rng = galaxy_rng(seed, index)
  cls = choose_class(rng, probabilities)
  cond = observing.draw_conditions(rng)
  target, truth = population.draw_target(rng, cls, cond.ebv, selection)
  neighbours, field_truth = field.draw_field(rng, cond.ebv, stamp * pixel_scale,
                                             truth.pop("force_star_halo", False))
  truth.update(field_truth)
  arc = [c for c in target if c.kind == "image"]
  body = [c for c in target if c.kind != "image"]
  galaxies = [c for c in neighbours if c.kind == "sersic"]
  stars = [c for c in neighbours if c.kind != "sersic"]
  groups = [body, stars] + ([arc] if arc else [])
  images = render.draw_noiseless(groups, cond.psf_fwhm_arcsec, stamp, pixel_scale,
                                 blended=(True, False, True))
  images.insert(2, render.draw_neighbour_layer(galaxies, cond.psf_fwhm_arcsec, stamp, pixel_scale))
  sky = cond.sky_sigma(pixel_scale)
  noise = observing.correlated_sky_noise(rng, sky, (stamp, stamp))
  noiseless = np.sum(images, axis=0)
  noise += observing.source_noise(rng, noiseless, sky, pixel_scale)
  image, truth["n_saturated_px"] = observing.saturate((noiseless + noise).astype(np.float32))
  if arc:
    truth["arc_snr"] = arc_snr(images[3], sky)
  truth.update(index=index, class_id=classes.CLASS_IDS[cls], class_name=cls.encode(),
               region=cond.region.encode(), ebv=cond.ebv)
  for b, band in enumerate(ssl_schema.BANDS):
    truth[f"psf_fwhm_{band}"] = cond.psf_fwhm_arcsec[b]
    truth[f"depth_mag_{band}"] = cond.depth_mag[b]
    truth[f"sky_sigma_{band}"] = sky[b]
  for key in ("subtype", "impostor_kind"):
    truth[key] = truth.get(key, "").encode() if isinstance(truth.get(key, ""), str) else truth[key]
  (ra0, ra1), (dec0, dec1) = PATCHES[cond.region]
  sin_dec = rng.uniform(np.sin(np.deg2rad(dec0)), np.sin(np.deg2rad(dec1)))
  z = truth["redshift"]
  z_phot = z + 0.02 * (1 + z) * rng.standard_normal() if rng.random() > 0.03 else rng.uniform(0.0, 1.2)
  catalogue = dict(
      ra=rng.uniform(ra0, ra1), dec=float(np.rad2deg(np.arcsin(sin_dec))), release=RELEASE,
      brickid=SIM_BRICKID_OFFSET + (seed % 1000) * 100_000 + index // 10_000, objid=index % 10_000,
      flux=10.0 ** (-0.4 * (np.array([truth["mag_g"], truth["mag_r"], truth["mag_z"]]) - 22.5)),
      psfsize=cond.psf_fwhm_arcsec, psfdepth=cond.psfdepth, ebv=cond.ebv,
      z_phot_median=max(z_phot, 0.0), z_spec=z if rng.random() < 0.05 else np.nan,
      source_type=_source_type(truth))
  if layers:
    names = ["target", "stars", "neighbours"] + (["arc"] if arc else [])
    return image, catalogue, truth, dict(zip(names, images))
  return image, catalogue, truth


def _simulate_range(args) -> tuple[np.ndarray, dict, dict]:
  seed, start, stop, probabilities, stamp, pixel_scale, selection = args
  n = stop - start
  images = np.empty((n, 3, stamp, stamp), np.float32)
  catalogue = {k: np.empty((n, *shape), dtype) for k, (shape, dtype) in ssl_schema.CATALOGUE_COLUMNS.items()}
  truth = {k: np.full(n, default, dtype) for k, (dtype, default) in TRUTH_COLUMNS.items()}
  for i in range(n):
    images[i], row, t = simulate_galaxy(seed, start + i, probabilities, stamp, pixel_scale, selection)
    for k, v in row.items():
      catalogue[k][i] = v
    for k, v in t.items():
      if k in truth:
        truth[k][i] = v
  return images, catalogue, truth


def _concat(parts: list[dict]) -> dict:
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _jobs(start, stop, seed, preset: presets.Preset, workers):
  probabilities = classes.prevalence_probabilities(preset.prevalence, preset.lens_fraction)
  n = stop - start
  workers = max(1, min(workers or os.cpu_count() or 1, n))
  per = max(1, min(64, -(-n // (4 * workers))))
  jobs = [(seed, a, min(a + per, stop), probabilities, preset.stamp, preset.pixel_scale, preset.selection)
          for a in range(start, stop, per)]
  return jobs, workers


def _parts(jobs, workers):
  """Yields (start, images, catalogue, truth) per job, in order; in `workers` processes."""
  if workers == 1:
    for job in jobs:
      yield (job[1], *_simulate_range(job))
    return
  # fork is cheapest, but forking a process in which JAX already runs threads can deadlock.
  method = "spawn" if "jax" in sys.modules else "fork"
  with multiprocessing.get_context(method).Pool(workers) as pool:
    for job, part in zip(jobs, pool.imap(_simulate_range, jobs, chunksize=1)):
      yield (job[1], *part)


def resolve_preset(preset: str | presets.Preset | None = None, **overrides) -> presets.Preset:
  """The named (default `faint`) or given preset with the not-None keyword settings replaced
  (prevalence, lens_fraction, r_range, stamp, pixel_scale; see `presets.Preset.with_overrides`)."""
  return presets.get_preset(preset).with_overrides(**overrides)


def deflector_subtracted(seed: int, index: int, preset: str | presets.Preset | None = None,
                         **overrides) -> tuple[np.ndarray, np.ndarray, dict]:
  """Stamp `index` of survey `seed` (the preset and settings it was made with; a file's
  `sim_config` attribute records them) re-made: (image, image minus the noiseless target, truth),
  each image (3, stamp, stamp) nanomaggies. For a strong lens the residual holds the arcs (plus
  neighbours and noise)."""
  chosen = resolve_preset(preset, **overrides)
  p = classes.prevalence_probabilities(chosen.prevalence, chosen.lens_fraction)
  image, _, truth, layers = simulate_galaxy(seed, index, p, chosen.stamp, chosen.pixel_scale,
                                            chosen.selection, layers=True)
  return image, image - layers["target"], truth


def simulate_range(start: int, stop: int, seed: int = 0, prevalence: Mapping[str, float] | None = None,
                   lens_fraction: float | None = None, stamp: int | None = None,
                   pixel_scale: float | None = None, workers: int | None = None,
                   r_range: tuple[float, float] | None = None,
                   preset: str | presets.Preset | None = None) -> tuple[np.ndarray, dict, dict]:
  """Galaxies start..stop-1 of survey `seed`; see `simulate_survey`."""
  chosen = resolve_preset(preset, prevalence=prevalence, lens_fraction=lens_fraction, r_range=r_range,
                          stamp=stamp, pixel_scale=pixel_scale)
  jobs, workers = _jobs(start, stop, seed, chosen, workers)
  parts = [p[1:] for p in _parts(jobs, workers)]
  images = np.concatenate([p[0] for p in parts])
  return images, _concat([p[1] for p in parts]), _concat([p[2] for p in parts])


def simulate_survey(n: int, seed: int = 0, prevalence: Mapping[str, float] | None = None,
                    stamp: int | None = None, pixel_scale: float | None = None,
                    lens_fraction: float | None = None, workers: int | None = None,
                    r_range: tuple[float, float] | None = None,
                    preset: str | presets.Preset | None = None) -> tuple[np.ndarray, dict, dict]:
  """Simulates n stamps in memory (about 0.28 MB each at 152 px; use `write_survey` for large n).

  `preset` names the survey (`presets.PRESETS`: `faint`, the default, `gzd`, `bgs_bright`,
  `lens_training`); the other arguments, when given, replace the preset's: `prevalence` maps
  class name -> weight, `lens_fraction` fixes the strong-lens probability, `r_range` bounds the
  target's r magnitude (AB, before extinction), `stamp` (px) and `pixel_scale` (arcsec/px).
  Returns images (n, 3, stamp, stamp) float32 in nanomaggies (g, r, z, channel-first), the
  catalogue {column: array} of `ssl_schema.CATALOGUE_COLUMNS`, and the truth {column: array}
  of `TRUTH_COLUMNS`. `workers` processes (default: all cores) give output identical to one.
  """
  return simulate_range(0, n, seed, prevalence, lens_fraction, stamp, pixel_scale, workers, r_range,
                        preset)


def write_survey(out_dir: str | os.PathLike, n: int, seed: int = 0,
                 prevalence: Mapping[str, float] | None = None, chunk: int = 100_000,
                 lens_fraction: float | None = None, workers: int | None = None,
                 r_range: tuple[float, float] | None = None,
                 preset: str | presets.Preset | None = None) -> list[str]:
  """Writes n stamps as ssl-legacysurvey HDF5 files of <= `chunk` stamps each; returns the paths.

  Files are named `ssl_schema.file_name(start, stop, stamp)` and filled as workers finish, so
  memory stays at a few parts whatever n is. Same arguments as `simulate_survey`; the file's
  `sim_config` attribute records the preset and its settings.
  """
  from lvm_jax.sim import survey_file
  chosen = resolve_preset(preset, prevalence=prevalence, lens_fraction=lens_fraction, r_range=r_range)
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for start in range(0, n, chunk):
    stop = min(start + chunk, n)
    path = os.path.join(os.fspath(out_dir), ssl_schema.file_name(start, stop, chosen.stamp))
    attrs = dict(seed=seed, start=start, stop=stop, preset=chosen.name,
                 prevalence=dict(chosen.prevalence), lens_fraction=chosen.lens_fraction,
                 r_range=list(chosen.selection.r_range), hlr_range=list(chosen.selection.hlr_range),
                 theta_e_range=list(chosen.selection.theta_e_range))
    jobs, used = _jobs(start, stop, seed, chosen, workers)
    with survey_file.SurveyFile(path, stop - start, TRUTH_COLUMNS, stamp=chosen.stamp, attrs=attrs) as out:
      for first, images, catalogue, truth in _parts(jobs, used):
        out.write(first - start, images, catalogue, truth)
    paths.append(path)
  return paths
