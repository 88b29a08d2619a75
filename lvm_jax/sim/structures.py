"""Patterns GalSim has no profile for, rendered with NumPy: spiral arms, rings, shells, clumps, tails.

Each function takes image-plane coordinates `x, y` (arcsec, +x west, +y north, arrays of one
shape) and returns a non-negative surface brightness of that shape (arbitrary normalisation;
`render_structure` normalises to unit flux). Galaxy-frame coordinates (u along the major axis,
v along the minor axis, deprojected by the axis ratio q) come from `galaxy_frame`.
"""

from __future__ import annotations

import numpy as np


def galaxy_frame(x: np.ndarray, y: np.ndarray, x0: float, y0: float, q: float,
                 pa_deg: float) -> tuple[np.ndarray, np.ndarray]:
  """Image (x, y) -> face-on galaxy frame (u, v), arcsec; u along the major axis at PA."""
  phi = np.deg2rad(pa_deg + 90.0)  # angle of the major axis counter-clockwise from +x
  dx, dy = x - x0, y - y0
  u = dx * np.cos(phi) + dy * np.sin(phi)
  v = -dx * np.sin(phi) + dy * np.cos(phi)
  return u, v / q


def _gaussians(u: np.ndarray, v: np.ndarray, cu: np.ndarray, cv: np.ndarray, sigma: np.ndarray,
               amp: np.ndarray, reach: float = 4.5) -> np.ndarray:
  """Sum of round Gaussians (centres cu, cv; widths sigma; peaks amp) in the (u, v) frame.

  u, v are affine in the array index (a pixel grid, maybe rotated and stretched), so each
  Gaussian is evaluated only in the index box covering `reach` sigmas about its centre.
  """
  out = np.zeros_like(u)
  if u.ndim != 2 or min(u.shape) < 2:
    for a, b, s, w in zip(cu, cv, sigma, amp):
      out += w * np.exp(-0.5 * ((u - a) ** 2 + (v - b) ** 2) / s**2)
    return out
  jac = np.array([[u[0, 1] - u[0, 0], u[1, 0] - u[0, 0]], [v[0, 1] - v[0, 0], v[1, 0] - v[0, 0]]])
  inv = np.linalg.inv(jac)  # (du, dv) -> (d column, d row)
  spread = np.abs(inv).sum(axis=1)
  h, w_ = u.shape
  for a, b, s, w in zip(cu, cv, sigma, amp):
    col, row = inv @ np.array([a - u[0, 0], b - v[0, 0]])
    rc, rr = spread * reach * s
    c0, c1 = max(int(col - rc), 0), min(int(col + rc) + 2, w_)
    r0, r1 = max(int(row - rr), 0), min(int(row + rr) + 2, h)
    if c0 >= c1 or r0 >= r1:
      continue
    uu, vv = u[r0:r1, c0:c1], v[r0:r1, c0:c1]
    out[r0:r1, c0:c1] += w * np.exp(-0.5 * ((uu - a) ** 2 + (vv - b) ** 2) / s**2)
  return out


def spiral(x, y, *, x0=0.0, y0=0.0, q=1.0, pa=0.0, r_d=1.0, n_arms=2, pitch_deg=15.0,
           phase=0.0, chirality=1, r_in=0.5, sharpness=4.0, clumps=0, clump_sigma=0.2,
           irregularity=0.0, lopsidedness=0.0, seed=0):
  """Logarithmic spiral arms on an exponential disk (scale length r_d), with star-forming clumps.

  Arm k follows theta = (phase + 2 pi k) / n_arms + chirality ln(r / r_in) / tan(pitch); the
  arm profile across is ((1 + cos psi) / 2)^sharpness; the centre (r < r_in) is suppressed.
  `irregularity` (0-1) wiggles the arms' phase with radius and modulates their brightness with
  azimuth, so the arms are neither identical nor perfectly smooth; `lopsidedness` (A1) makes
  one side brighter by 1 + A1 cos(theta - theta_1). Clumps sit on the arms with lognormal
  brightness (star-forming complexes, the main source of a spiral's asymmetry).
  """
  u, v = galaxy_frame(x, y, x0, y0, q, pa)
  r = np.hypot(u, v) + 1e-6
  theta = np.arctan2(v, u)
  wind = chirality * np.log(np.maximum(r, 1e-3) / r_in) / np.tan(np.deg2rad(pitch_deg))
  wiggle_phase, bright_phase, bright_m = np.random.default_rng(seed + 1).uniform(0, 2 * np.pi, 3)
  wiggle = irregularity * 0.8 * np.sin(3.0 * np.log(np.maximum(r, 1e-3) / r_in) + wiggle_phase)
  psi = n_arms * (theta - wind) - phase + wiggle
  arms = ((1.0 + np.cos(psi)) / 2.0) ** sharpness
  arms *= 1.0 + irregularity * 0.6 * np.cos(theta + bright_phase) * np.cos(2 * theta + bright_m)
  arms *= 1.0 + lopsidedness * np.cos(theta - wiggle_phase)
  envelope = np.exp(-r / r_d) * (1.0 - np.exp(-((r / r_in) ** 2)))
  image = envelope * arms
  if clumps:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, n_arms, clumps)
    rc = r_in + rng.exponential(r_d, clumps)
    th = (phase + 2 * np.pi * k) / n_arms + chirality * np.log(rc / r_in) / np.tan(np.deg2rad(pitch_deg))
    th += rng.normal(0, 0.08, clumps)
    amp = np.exp(-rc / r_d) * rng.lognormal(0.0, 0.8, clumps) * 6.0 * (0.2 / clump_sigma) ** 2
    image += _gaussians(u, v, rc * np.cos(th), rc * np.sin(th),
                        np.full(clumps, clump_sigma), amp)
  return image


def ring(x, y, *, x0=0.0, y0=0.0, q=1.0, pa=0.0, radius=1.5, width=0.25, arc_start_deg=0.0,
         arc_span_deg=360.0, clumps=0, clump_sigma=0.2, seed=0):
  """A Gaussian ring (or arc, angles in the galaxy frame from +u) of given radius and width."""
  u, v = galaxy_frame(x, y, x0, y0, q, pa)
  r = np.hypot(u, v)
  image = np.exp(-0.5 * ((r - radius) / width) ** 2)
  if arc_span_deg < 360.0:  # a cos^2 taper from the arc's middle to exactly 0 at its ends
    theta = np.rad2deg(np.arctan2(v, u))
    off = np.abs((theta - arc_start_deg - arc_span_deg / 2.0 + 180.0) % 360.0 - 180.0)
    image *= np.cos(0.5 * np.pi * np.minimum(off / (arc_span_deg / 2.0), 1.0)) ** 2
  if clumps:
    rng = np.random.default_rng(seed)
    th = np.deg2rad(arc_start_deg + rng.uniform(0, arc_span_deg, clumps))
    amp = rng.uniform(0.5, 1.5, clumps) * 1.5
    image += _gaussians(u, v, radius * np.cos(th), radius * np.sin(th),
                        np.full(clumps, clump_sigma), amp)
  return image


def clumps(x, y, *, x0=0.0, y0=0.0, q=1.0, pa=0.0, radius=1.5, count=10, sigma=0.25,
           diffuse=0.5, seed=0):
  """Irregular light: clumps from a 2D random walk plus a diffuse exponential of scale `radius`."""
  u, v = galaxy_frame(x, y, x0, y0, q, pa)
  rng = np.random.default_rng(seed)
  steps = rng.normal(0, radius * 0.4, (count, 2))
  pos = np.cumsum(steps, axis=0)
  pos -= pos.mean(axis=0)
  sig = sigma * rng.uniform(0.6, 1.6, count)
  amp = rng.lognormal(0, 0.6, count) / sig**2
  image = _gaussians(u, v, pos[:, 0], pos[:, 1], sig, amp)
  image /= max(image.sum(), 1e-12)
  halo = np.exp(-np.hypot(u, v) / (radius * 0.8))
  image = (1 - diffuse) * image + diffuse * halo / halo.sum()
  return image


def tail(x, y, *, x0=0.0, y0=0.0, pa=0.0, r_start=1.0, r_end=8.0, bend_deg=60.0,
         width=0.4, points=40, **_):
  """A tidal tail: a stream from r_start to r_end along PA bending by `bend_deg`, fading out."""
  t = np.linspace(0.0, 1.0, points)
  r = r_start + (r_end - r_start) * t
  ang = np.deg2rad(pa + 90.0 + bend_deg * t)  # counter-clockwise from +x
  cx, cy = x0 + r * np.cos(ang), y0 + r * np.sin(ang)
  sig = width * (1.0 + 1.5 * t)
  amp = np.exp(-2.0 * t) / sig**2
  return _gaussians(x, y, cx, cy, sig, amp)


def shells(x, y, *, x0=0.0, y0=0.0, q=1.0, pa=0.0, radii=(2.0, 3.5, 5.0), width=0.25,
           span_deg=140.0, **_):
  """Interleaved shells of a minor merger: arcs alternating sides along the major axis."""
  image = np.zeros_like(x)
  for i, rad in enumerate(radii):
    start = (0.0 if i % 2 == 0 else 180.0) - span_deg / 2.0
    image += ring(x, y, x0=x0, y0=y0, q=q, pa=pa, radius=rad, width=width,
                  arc_start_deg=start, arc_span_deg=span_deg) / (1.0 + i)
  return image


PATTERNS = {"spiral": spiral, "ring": ring, "clumps": clumps, "tail": tail, "shells": shells}


def render_structure(params: dict, scale: float, half_size: float) -> np.ndarray:
  """Unit-flux image (2m, 2m) of `params["pattern"]` at `scale` arcsec/px over +-half_size arcsec.

  Pixel centres sit at (i + 0.5) * scale - half_size; x along axis 1, y along axis 0 (north up
  with origin='lower'), matching GalSim's array layout.
  """
  m = int(np.ceil(half_size / scale))
  c = (np.arange(2 * m) + 0.5 - m) * scale
  x, y = np.meshgrid(c, c)
  kwargs = {k: v for k, v in params.items() if k not in ("pattern", "half_size")}
  kwargs["x0"], kwargs["y0"] = 0.0, 0.0  # rendered about its own centre, shifted by GalSim
  image = PATTERNS[params["pattern"]](x, y, **kwargs)
  total = image.sum()
  return image / total if total > 0 else image
