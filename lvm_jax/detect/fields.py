"""Wide survey fields with strong lenses at known positions: simulated and stored.

`Field` lives in `lvm_jax.detect.field`, real FITS fields in `lvm_jax.detect.fits_fields` (both
importable from here).

Simulated fields (`simulate_field`) reuse the survey's drawing functions: one set of observing
conditions per field (`observing.draw_conditions`), targets from `population.draw_target`
(any class, lenses and impostors included) each rendered on a 152 px stamp by
`render.draw_noiseless` and added at its position, faint neighbours by `render.draw_neighbour_layer`
and stars by `render.draw_noiseless` on the whole field, then the survey's correlated sky noise.
The instance mask of a lens is the footprint of its noiseless deflector + lensed arc where the
surface brightness in any of g, r, z exceeds `MASK_SB_MAG` = 25.0 AB mag / arcsec^2
(0.00687 nanomaggies per pixel); the box is the mask's bounding box.

Densities are raised above the real sky so that small training sets hold many examples: a 288 px
field (75 arcsec) holds on average `mean_targets` = 8 bright (r < 21) galaxies, whereas DR9 has
~1 there; faint neighbours and stars keep the survey's densities (`lvm_jax.sim.field`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lvm_jax import provenance
from lvm_jax.sim import presets
# the Field and its constants, and the FITS fields, importable from here as before
from lvm_jax.detect.field import (LENS_COLUMNS, MASK_SB_MAG, PIXEL_SCALE, STAMP,  # noqa: F401
                                  Field, box_of, mask_threshold_nmgy)
from lvm_jax.detect.fits_fields import (pixel_scale_arcsec, read_fits_field,  # noqa: F401
                                        read_lens_csv, sim_field_header, write_fits_field)

FORMAT_VERSION = 1

@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """How simulated fields are drawn. Counts are Poisson means per field unless said otherwise.

  size: field side, pixels. lenses: (min, max) number of strong lenses, uniform. mean_targets:
  other bright galaxies (classes drawn from `prevalence`, default the survey's without lenses).
  impostor_fraction: probability that a bright galaxy is a lens impostor. lens_r_range /
  target_r_range: r magnitude bounds (AB) of deflectors / targets. theta_e_range: Einstein
  radii of the lenses, arcsec; lensed_mag_range: r magnitudes (AB) of their arcs (default the
  visible lenses of `lvm_jax.sim.presets`: 1.2-3", r = 18-20.5). min_separation: pixels
  between target centres (rejection sampling).
  """
  size: int = 288
  lenses: tuple[int, int] = (0, 2)
  mean_targets: float = 8.0
  impostor_fraction: float = 0.15
  target_r_range: tuple[float, float] = (16.5, 21.0)
  lens_r_range: tuple[float, float] = (16.5, 20.0)
  theta_e_range: tuple[float, float] = presets.VISIBLE_THETA_E
  lensed_mag_range: tuple[float, float] = presets.VISIBLE_ARC_MAG
  min_separation: float = 24.0
  border: int = 8

  def to_dict(self) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _positions(rng: np.random.Generator, n: int, spec: FieldSpec) -> np.ndarray:
  """(n, 2) pixel positions (x, y) >= min_separation apart (best effort after 200 tries each)."""
  out: list[np.ndarray] = []
  lo, hi = spec.border, spec.size - spec.border
  for _ in range(n):
    for _ in range(200):
      p = rng.uniform(lo, hi, 2)
      if all(np.hypot(*(p - q)) >= spec.min_separation for q in out):
        break
    out.append(p)
  return np.array(out, np.float64).reshape(n, 2)


def _shift_components(comps, dx: float, dy: float) -> None:
  """Moves components by (dx, dy) arcsec (sub-pixel placement on the stamp)."""
  for c in comps:
    keys = ("x0", "y0") if c.kind == "structure" else ("x", "y")
    c.params[keys[0]] = c.params.get(keys[0], 0.0) + dx
    c.params[keys[1]] = c.params.get(keys[1], 0.0) + dy


def _paste(field: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> None:
  """Adds a (C, s, s) stamp into a (C, H, W) field with its pixel (0, 0) at (x0, y0), clipped."""
  _, h, w = field.shape
  s = stamp.shape[-1]
  fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
  if fx0 < fx1 and fy0 < fy1:
    field[..., fy0:fy1, fx0:fx1] += stamp[..., fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]


def _target_names(rng: np.random.Generator, spec: FieldSpec,
                  prevalence: Mapping[str, float] | None) -> tuple[list[str], int]:
  """Class names of a field's bright targets (lenses first) and the number of lenses."""
  from lvm_jax.sim import classes
  weights = dict(classes.DEFAULT_PREVALENCE if prevalence is None else prevalence)
  weights["strong_lens"] = 0.0
  weights["lens_impostor"] = 0.0
  probs = classes.prevalence_probabilities(weights)
  n_lens = int(rng.integers(spec.lenses[0], spec.lenses[1] + 1))
  n_other = int(rng.poisson(spec.mean_targets))
  names = ["strong_lens"] * n_lens + [
      "lens_impostor" if rng.random() < spec.impostor_fraction
      else classes.CLASS_NAMES[int(rng.choice(len(probs), p=probs))] for _ in range(n_other)]
  return names, n_lens


def _render_target(rng, name: str, x: float, y: float, cond, spec: FieldSpec):
  """Draws one target with `population.draw_target` and renders it on a 152 px stamp.

  Returns (layers [body, arc?] each (3, STAMP, STAMP) nanomaggies, stamp origin (x0, y0) in
  field pixels, truth). The stamp centre goes to the nearest half-integer grid point, the rest of
  the offset is a sub-pixel shift of the components."""
  from lvm_jax.sim import population, render
  from lvm_jax.sim.scaling import Selection
  r_range = spec.lens_r_range if name == "strong_lens" else spec.target_r_range
  selection = Selection(r_range=tuple(map(float, r_range)),
                        theta_e_range=tuple(map(float, spec.theta_e_range)),
                        lensed_mag_range=tuple(map(float, spec.lensed_mag_range)))
  comps, truth = population.draw_target(rng, name, cond.ebv, selection)
  x0, y0 = int(np.floor(x - (STAMP - 1) / 2)), int(np.floor(y - (STAMP - 1) / 2))
  dx, dy = x - (x0 + (STAMP - 1) / 2), y - (y0 + (STAMP - 1) / 2)
  _shift_components(comps, dx * PIXEL_SCALE, dy * PIXEL_SCALE)
  arc = [c for c in comps if c.kind == "image"]
  body = [c for c in comps if c.kind != "image"]
  layers = render.draw_noiseless([body] + ([arc] if arc else []), cond.psf_fwhm_arcsec, STAMP,
                                 PIXEL_SCALE)
  return layers, (x0, y0), truth


def _lens_instance(layers, origin, n: int, sky: np.ndarray, x: float, y: float, truth: dict):
  """(mask (n, n) bool, truth row) of a rendered lens: deflector + arc above MASK_SB_MAG."""
  from lvm_jax.sim import survey
  full = np.zeros((3, n, n))
  _paste(full, layers[0] + layers[1], *origin)
  arc = np.zeros((3, n, n))
  _paste(arc, layers[1], *origin)
  row = dict(x=x, y=y, theta_e_arcsec=truth["theta_e_arcsec"], arc_snr=survey.arc_snr(arc, sky),
             mag_r=truth["mag_r"], lensed_source_mag_r=truth["lensed_source_mag_r"])
  return (full > mask_threshold_nmgy()).any(axis=0), row


def _background(rng, cond, n: int, positions, star_halos) -> tuple[np.ndarray, int, int]:
  """Faint neighbours and stars at the survey's densities scaled to the field's area, plus a
  bright star beside each "star halo" impostor: ((3, n, n) nanomaggies, n_faint, n_stars)."""
  from lvm_jax.sim import field as sim_field
  from lvm_jax.sim import render
  area = (n / STAMP) ** 2
  half = n * PIXEL_SCALE / 2.0
  faint = [sim_field.neighbour(rng, cond.ebv, half + 1.0)
           for _ in range(rng.poisson(sim_field.MEAN_NEIGHBOURS * area))]
  stars = [sim_field.star(rng, cond.ebv, half, r_min=0.0)
           for _ in range(rng.poisson(sim_field.MEAN_STARS * area))]
  for (x, y), halo in zip(positions, star_halos):
    if halo:
      bright = sim_field.star(rng, cond.ebv, 6.0, mag_range=(10.5, 13.5), r_min=4.0)
      bright.params.update(x=bright.params["x"] + (x - (n - 1) / 2) * PIXEL_SCALE,
                           y=bright.params["y"] + (y - (n - 1) / 2) * PIXEL_SCALE, halo=True,
                           wing_fraction=float(rng.uniform(0.03, 0.08)),
                           wing_fwhm=float(rng.uniform(4.0, 8.0)))
      stars.append(bright)
  image = render.draw_neighbour_layer(faint, cond.psf_fwhm_arcsec, n, PIXEL_SCALE)
  if stars:
    image = image + render.draw_noiseless([stars], cond.psf_fwhm_arcsec, n, PIXEL_SCALE,
                                          blended=(False,))[0]
  return image, len(faint), len(stars)


def simulate_field(seed: int, index: int, spec: FieldSpec = FieldSpec(),
                   prevalence: Mapping[str, float] | None = None) -> Field:
  """Field `index` of the field set `seed`, drawn from its own generator `default_rng([seed, index])`.

  Returns a `Field` (image (size, size, 3) nanomaggies) whose `meta` records the conditions and
  every target (class, position); see the module docstring for what is drawn and how.
  """
  from lvm_jax.sim import observing
  rng = np.random.default_rng([seed, index])
  n = spec.size
  cond = observing.draw_conditions(rng)
  sky = cond.sky_sigma(PIXEL_SCALE)
  names, n_lens = _target_names(rng, spec, prevalence)
  pos = _positions(rng, len(names), spec)
  image = np.zeros((3, n, n))
  masks, lens_rows, objects, star_halos = [], [], [], []
  for name, (x, y) in zip(names, pos):
    layers, origin, truth = _render_target(rng, name, x, y, cond, spec)
    star_halos.append(truth.pop("force_star_halo", False))
    for layer in layers:
      _paste(image, layer, *origin)
    objects.append(dict(class_name=name, x=float(x), y=float(y), mag_r=float(truth["mag_r"]),
                        impostor_kind=str(truth.get("impostor_kind", ""))))
    if name == "strong_lens":
      mask, row = _lens_instance(layers, origin, n, sky, x, y, truth)
      masks.append(mask)
      lens_rows.append(row)
  background, n_faint, n_stars = _background(rng, cond, n, pos, star_halos)
  image += background
  image += observing.correlated_sky_noise(rng, sky, (n, n))
  masks_arr = np.array(masks, bool).reshape(len(masks), n, n)
  meta = dict(seed=seed, index=index, region=cond.region,
              psf_fwhm_arcsec=[float(v) for v in cond.psf_fwhm_arcsec],
              depth_mag=[float(v) for v in cond.depth_mag], sky_sigma=[float(v) for v in sky],
              ebv=cond.ebv, n_faint=n_faint, n_stars=n_stars, objects=objects)
  return Field(image=np.moveaxis(image, 0, -1).astype(np.float32),
               boxes=np.array([box_of(m) for m in masks_arr], np.float32).reshape(-1, 4),
               masks=masks_arr,
               lenses={k: np.array([r[k] for r in lens_rows], np.float32) for k in LENS_COLUMNS},
               n_galaxies=len(names) - n_lens,
               n_impostors=sum(o["class_name"] == "lens_impostor" for o in objects), meta=meta)


def _simulate_chunk(args) -> list[Field]:
  seed, start, stop, spec, prevalence = args
  return [simulate_field(seed, i, spec, prevalence) for i in range(start, stop)]


def simulate_fields(n: int, seed: int = 0, spec: FieldSpec = FieldSpec(),
                    prevalence: Mapping[str, float] | None = None, workers: int = 1,
                    start: int = 0) -> list[Field]:
  """Fields start..start+n-1 of set `seed`; identical whatever `workers` (separate processes)."""
  if workers <= 1 or n < 4:
    return _simulate_chunk((seed, start, start + n, spec, prevalence))
  import multiprocessing
  import sys
  per = max(1, -(-n // (4 * workers)))
  jobs = [(seed, a, min(a + per, start + n), spec, prevalence) for a in range(start, start + n, per)]
  method = "spawn" if "jax" in sys.modules else "fork"
  with multiprocessing.get_context(method).Pool(workers) as pool:
    return [f for part in pool.imap(_simulate_chunk, jobs) for f in part]


# --- storage ---------------------------------------------------------------------------------


def write_fields(path: str | os.PathLike, fields: Sequence[Field], **attrs: Any) -> str:
  """Writes fields of one size to an HDF5 file; `attrs` (seed, spec, ...) go into its provenance.

  Layout: `images` (N, H, W, 3) float32 nanomaggies; per field `n_galaxies`, `n_impostors`,
  `meta` (JSON strings), `wcs_header` (strings, may be empty); lens table (one row per lens):
  `lenses/field` (index of its field), `lenses/box` (K, 4), `lenses/mask` (K, H, W) bool
  (gzip), `lenses/<column>` for `LENS_COLUMNS`. File attrs: `provenance` (JSON), `format_version`.
  """
  import h5py
  if not fields:
    raise ValueError(f"{path}: no fields to write")
  shape = fields[0].image.shape
  for i, f in enumerate(fields):
    if f.image.shape != shape:
      raise ValueError(f"{path}: field {i} has shape {f.image.shape}, field 0 {shape}")
  path = os.fspath(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with h5py.File(tmp, "w") as h:
    h.attrs["format_version"] = FORMAT_VERSION
    h.attrs["provenance"] = json.dumps(provenance.provenance(**attrs))
    h.create_dataset("images", data=np.stack([f.image for f in fields]), chunks=(1, *shape),
                     compression="gzip", compression_opts=1)
    h["n_galaxies"] = np.array([f.n_galaxies for f in fields], np.int32)
    h["n_impostors"] = np.array([f.n_impostors for f in fields], np.int32)
    h["meta"] = np.array([json.dumps(f.meta) for f in fields], dtype=h5py.string_dtype())
    h["wcs_header"] = np.array([f.wcs_header or "" for f in fields], dtype=h5py.string_dtype())
    g = h.create_group("lenses")
    g["field"] = np.concatenate([np.full(f.num_lenses, i, np.int32) for i, f in enumerate(fields)])
    g["box"] = np.concatenate([f.boxes.reshape(-1, 4) for f in fields]).astype(np.float32)
    masks = np.concatenate([f.masks.reshape(-1, *shape[:2]) for f in fields])
    g.create_dataset("mask", data=masks, chunks=(1, *shape[:2]) if len(masks) else None,
                     compression="gzip" if len(masks) else None)
    for k in LENS_COLUMNS:
      g[k] = np.concatenate([np.asarray(f.lenses[k], np.float32).reshape(-1) for f in fields])
  os.replace(tmp, path)
  return path


class FieldFile:
  """Random access to a field file written by `write_fields`: `len`, `[i]` -> `Field`, `provenance`."""

  def __init__(self, path: str | os.PathLike):
    import h5py
    self.path = os.fspath(path)
    try:
      with h5py.File(self.path, "r") as h:
        version = int(h.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
          raise ValueError(f"{self.path}: field-file format {version}, expected {FORMAT_VERSION}")
        self.provenance = json.loads(h.attrs["provenance"])
        self._n = int(h["images"].shape[0])
        self._lens_field = h["lenses/field"][...]
        self._lens_table = {k: h[f"lenses/{k}"][...] for k in LENS_COLUMNS}
        self._boxes = h["lenses/box"][...]
        self._n_galaxies = h["n_galaxies"][...]
        self._n_impostors = h["n_impostors"][...]
    except OSError as e:
      raise ValueError(f"{self.path}: not a readable field file ({e})") from e

  def __len__(self) -> int:
    return self._n

  def __getitem__(self, index: int) -> Field:
    import h5py
    index = int(index)
    if not 0 <= index < self._n:
      raise IndexError(f"{self.path}: field index {index} out of range [0, {self._n})")
    rows = np.nonzero(self._lens_field == index)[0]
    with h5py.File(self.path, "r") as h:
      image = h["images"][index]
      masks = (h["lenses/mask"][rows[0]:rows[-1] + 1] if rows.size
               else np.zeros((0, *image.shape[:2]), bool))
      meta = json.loads(h["meta"][index])
      wcs = h["wcs_header"][index]
    if not np.isfinite(image).all():
      raise ValueError(f"{self.path}: field {index} has NaN/inf pixels")
    wcs = wcs.decode() if isinstance(wcs, bytes) else wcs
    return Field(image=image, boxes=self._boxes[rows], masks=masks.astype(bool),
                 lenses={k: v[rows] for k, v in self._lens_table.items()},
                 n_galaxies=int(self._n_galaxies[index]), n_impostors=int(self._n_impostors[index]),
                 meta=meta, wcs_header=wcs or None)
