"""Draws one stamp with GalSim: components -> per-band PSF convolution -> pixels -> sky noise.

Every component is convolved with the band's Moffat PSF (beta = 3.5, FWHM from the stamp's
conditions) and integrated over 0.262 arcsec pixels (GalSim `method="auto"`), then (in `survey`)
correlated Gaussian sky noise, the sources' photon noise and saturation are applied
(`observing.correlated_sky_noise`, `observing.source_noise`, `observing.saturate`). The
target's centre lies at the stamp centre, array position ((H - 1) / 2, (W - 1) / 2), i.e.
between the four central pixels for H = W = 152.
"""

from __future__ import annotations

import functools

import galsim
import numpy as np

from lvm_jax.sim import structures
from lvm_jax.sim.components import Component
from lvm_jax.sim.observing import MOFFAT_BETA

# Truncating Sersic wings at 8 half-light radii keeps FFTs at ~384^2 instead of 768^2 (~10x
# faster); hlr refers to the truncated profile. GalSim caches a Sersic's radial tables per
# (n, trunc / hlr), so the ratio is fixed and n comes in steps of 0.1 (`population`).
SERSIC_TRUNCATION = 8.0
_GSPARAMS = galsim.GSParams(folding_threshold=5e-3, maxk_threshold=2e-3)
STRUCTURE_OVERSAMPLING = 2


def sersic_profile(n: float, hlr: float) -> galsim.GSObject:
  """Circular unit-flux Sersic of half-light radius `hlr` arcsec, truncated at 8 hlr (5 hlr for
  n < 1, whose light beyond is negligible and whose GalSim root-finding can fail at 8)."""
  n = round(float(np.clip(n, 0.3, 6.2)), 1)
  ratio = SERSIC_TRUNCATION if n >= 1.0 else 5.0
  try:
    return galsim.Sersic(n, half_light_radius=hlr, trunc=ratio * hlr, gsparams=_GSPARAMS)
  except galsim.GalSimError:  # pragma: no cover - GalSim's truncated-Sersic solver, rare
    return galsim.Sersic(n, half_light_radius=hlr, gsparams=_GSPARAMS)


def unit_profile(c: Component, pixel_scale: float, centred: bool = False) -> galsim.GSObject:
  """The unit-flux GalSim profile of a component (no PSF), at its position (or at the origin)."""
  p = c.params
  beta = (p.get("pa", 0.0) + 90.0) * galsim.degrees
  if c.kind == "sersic":
    hlr_circ = p["hlr"] * np.sqrt(p["q"])
    obj = sersic_profile(p["n"], hlr_circ).shear(q=p["q"], beta=beta)
  elif c.kind == "inclined_exp":
    obj = galsim.InclinedExponential(p["inclination_deg"] * galsim.degrees,
                                     half_light_radius=p["hlr"],
                                     scale_h_over_r=p["scale_height_ratio"],
                                     gsparams=_GSPARAMS).rotate(beta)
  elif c.kind == "point":
    return galsim.DeltaFunction()
  elif c.kind == "structure":
    scale = pixel_scale / STRUCTURE_OVERSAMPLING
    pixels = structures.render_structure(p, scale, p["half_size"])
    obj = galsim.InterpolatedImage(galsim.ImageD(pixels, scale=scale), flux=1.0, pad_factor=1.5,
                                   calculate_stepk=False, calculate_maxk=False, gsparams=_GSPARAMS)
    return obj if centred else obj.shift(p.get("x0", 0.0), p.get("y0", 0.0))
  elif c.kind in ("image", "absorption"):
    obj = galsim.InterpolatedImage(galsim.ImageD(p["pixels"], scale=p["scale"]), flux=1.0,
                                   pad_factor=1.5, calculate_stepk=False, calculate_maxk=False,
                                   gsparams=_GSPARAMS)
  else:
    raise ValueError(f"unknown component kind {c.kind}")
  return obj if centred else obj.shift(p.get("x", 0.0), p.get("y", 0.0))


@functools.lru_cache(maxsize=512)
def band_psf(fwhm_arcsec: float) -> galsim.GSObject:
  """Moffat PSF, cached: FWHMs come in 0.01 arcsec steps so GalSim's maxk/stepk are reused."""
  return galsim.Moffat(beta=MOFFAT_BETA, fwhm=fwhm_arcsec, gsparams=_GSPARAMS)


def _extent(c: Component) -> float:
  """Radius (arcsec) outside which a component's light is negligible, before the PSF."""
  p = c.params
  if c.kind == "sersic":
    return SERSIC_TRUNCATION * p["hlr"]
  if c.kind == "inclined_exp":
    return 5.0 * p["hlr"]
  if c.kind == "structure":
    return p["half_size"] * 1.42
  if c.kind in ("image", "absorption"):
    return p["pixels"].shape[0] * p["scale"] * 0.71
  return 0.0


def _draw_at(obj, image: galsim.Image, x: float, y: float, radius: float, pixel_scale: float,
             method: str = "auto") -> None:
  """Adds `obj` (centred at the origin) at (x, y) arcsec from the stamp centre, drawing only into
  the sub-image within `radius` arcsec (small FFTs for small objects)."""
  full = image.bounds
  centre = image.true_center + galsim.PositionD(x / pixel_scale, y / pixel_scale)
  r = int(np.ceil(radius / pixel_scale)) + 2
  ix, iy = int(np.floor(centre.x)), int(np.floor(centre.y))
  bounds = galsim.BoundsI(ix - r, ix + r + 1, iy - r, iy + r + 1) & full
  if not bounds.isDefined():
    return
  obj.drawImage(image=image[bounds], add_to_image=True, method=method, center=centre)


def _sersic_stamp(c: Component, pixel_scale: float, origin_x: float, origin_y: float,
                  shape: tuple[int, int], sub: int = 3) -> tuple[slice, slice, np.ndarray] | None:
  """A small Sersic's pixel-averaged image, unit flux within its window (8 hlr for n >= 2, else
  5 hlr, <= 15 arcsec), cropped to a grid of `shape` whose pixel (0, 0) centre is at
  (origin_x, origin_y) arcsec; None when it falls off the grid."""
  from lvm_jax.sim.lensing import sersic_surface_brightness
  p = c.params
  radius = min((SERSIC_TRUNCATION if p["n"] >= 2 else 5.0) * p["hlr"], 15.0)
  cx, cy = (p["x"] - origin_x) / pixel_scale, (p["y"] - origin_y) / pixel_scale
  r = int(np.ceil(radius / pixel_scale))
  x0, x1 = int(np.floor(cx)) - r, int(np.ceil(cx)) + r + 1
  y0, y1 = int(np.floor(cy)) - r, int(np.ceil(cy)) + r + 1
  cx0, cx1, cy0, cy1 = max(x0, 0), min(x1, shape[1]), max(y0, 0), min(y1, shape[0])
  if cx0 >= cx1 or cy0 >= cy1:
    return None
  offs = (np.arange(sub) + 0.5) / sub - 0.5
  xs = ((np.arange(x0, x1)[:, None] + offs).ravel()) * pixel_scale + origin_x
  ys = ((np.arange(y0, y1)[:, None] + offs).ravel()) * pixel_scale + origin_y
  xx, yy = np.meshgrid(xs, ys)
  sb = sersic_surface_brightness(xx, yy, x0=p["x"], y0=p["y"], n=p["n"], hlr=max(p["hlr"], 0.05),
                                 q=p["q"], pa_deg=p["pa"])
  sb[np.hypot(xx - p["x"], yy - p["y"]) > radius] = 0.0
  img = sb.reshape(y1 - y0, sub, x1 - x0, sub).mean(axis=(1, 3))
  img /= img.sum()
  return slice(cy0, cy1), slice(cx0, cx1), img[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


@functools.lru_cache(maxsize=512)
def psf_kernel(fwhm_arcsec: float, pixel_scale: float, size: int = 61) -> np.ndarray:
  """The Moffat PSF sampled at pixel centres (no pixel convolution), (size, size), unit sum."""
  k = band_psf(fwhm_arcsec).drawImage(nx=size, ny=size, scale=pixel_scale, method="no_pixel").array
  return k / k.sum()


@functools.lru_cache(maxsize=512)
def _kernel_ft(fwhm_arcsec: float, pixel_scale: float, size: int) -> np.ndarray:
  """rfft2 of the PSF kernel zero-padded to (size, size) with its centre at pixel (0, 0)."""
  k = psf_kernel(fwhm_arcsec, pixel_scale)
  padded = np.zeros((size, size))
  h = k.shape[0] // 2
  padded[:k.shape[0], :k.shape[1]] = k
  return np.fft.rfft2(np.roll(padded, (-h, -h), axis=(0, 1)))


def draw_neighbour_layer(neighbours: list[Component], psf_fwhm: np.ndarray, stamp: int,
                         pixel_scale: float, margin: int = 32) -> np.ndarray:
  """Faint neighbour galaxies (Sersic components), (3, stamp, stamp) float64 nanomaggies.

  Faster than one GalSim FFT per neighbour and band: each neighbour's pixel-averaged profile is
  evaluated once with NumPy (3 x 3 sub-pixels), summed per band with its colour, and each band's
  layer is convolved once with the PSF sampled at pixel centres (pixel x PSF x galaxy, as GalSim's
  method="auto"). The layer has a `margin` (>= the kernel's 30 px half-width, so the circular
  FFT convolution does not wrap into the stamp) from which neighbours just outside spill in.
  """
  size = stamp + 2 * margin
  origin = -(size - 1) / 2 * pixel_scale  # arcsec of pixel (0, 0) relative to the stamp centre
  layer = np.zeros((3, size, size))
  for c in neighbours:
    placed = _sersic_stamp(c, pixel_scale, origin, origin, (size, size))
    if placed is not None:
      ys, xs, img = placed
      layer[:, ys, xs] += c.flux[:, None, None] * img
  if not neighbours:
    return np.zeros((3, stamp, stamp))
  kernels = np.stack([_kernel_ft(float(f), pixel_scale, size) for f in psf_fwhm])
  conv = np.fft.irfft2(np.fft.rfft2(layer) * kernels, s=(size, size))
  return conv[:, margin:margin + stamp, margin:margin + stamp]


def draw_noiseless(groups: list[list[Component]], psf_fwhm: np.ndarray, stamp: int,
                   pixel_scale: float, blended: tuple[bool, ...] | None = None) -> list[np.ndarray]:
  """Per group, the PSF-convolved noiseless image (3, stamp, stamp) float64, nanomaggies.

  A `blended` group (e.g. the target's components, all near the centre) is summed before
  convolution (one FFT per band); otherwise its components are convolved one by one, each into
  the sub-image it covers. Points are drawn as shifted PSFs; a point with `halo` also gets a
  wide Moffat (beta = 1.8) wing. `psf_fwhm` is (3,) arcsec.
  """
  blended = (True,) * len(groups) if blended is None else blended
  out = []
  for group, together in zip(groups, blended):
    profiles = [unit_profile(c, pixel_scale, centred=not together) for c in group]
    stack = np.zeros((3, stamp, stamp))
    for b in range(3):
      image = galsim.ImageD(stamp, stamp, scale=pixel_scale)
      psf = band_psf(float(psf_fwhm[b]))
      psf_radius = 4.0 * float(psf_fwhm[b])
      extended = [(p, c) for p, c in zip(profiles, group) if c.kind != "point" and c.flux[b] != 0]
      if extended and together:
        total = galsim.Sum([p.withFlux(float(c.flux[b])) for p, c in extended])
        # real_space=False: GalSim would convolve a truncated (hard-edged) Sersic in real space.
        radius = max(_extent(c) + np.hypot(c.params.get("x", 0.0), c.params.get("y", 0.0))
                     + np.hypot(c.params.get("x0", 0.0), c.params.get("y0", 0.0))
                     for _, c in extended) + psf_radius
        _draw_at(galsim.Convolve(total, psf, real_space=False), image, 0.0, 0.0, radius, pixel_scale)
      else:
        for p, c in extended:
          obj = galsim.Convolve(p.withFlux(float(c.flux[b])), psf, real_space=False)
          _draw_at(obj, image, c.params.get("x", 0.0), c.params.get("y", 0.0),
                   _extent(c) + psf_radius, pixel_scale)
      for c in group:
        if c.kind != "point":
          continue
        x, y, f = c.params["x"], c.params["y"], float(c.flux[b])
        if c.params.get("halo"):
          wf = c.params["wing_fraction"]
          wing = galsim.Moffat(beta=1.8, fwhm=c.params["wing_fwhm"], trunc=60.0, gsparams=_GSPARAMS)
          # broad, so no pixel convolution (no FFT) is needed
          _draw_at(wing.withFlux(f * wf), image, x, y, 60.0, pixel_scale, method="no_pixel")
          f *= 1 - wf
        _draw_at(psf.withFlux(f), image, x, y, psf_radius * (3.0 if f > 100 else 1.5), pixel_scale)
      stack[b] = image.array
    out.append(stack)
  return out
