"""Named simulated surveys: which galaxies (class mix, magnitude and size windows), stamp size,
lens prevalence and Einstein radii.

| preset | selection | stamp | strong lenses |
| --- | --- | --- | --- |
| `faint` (default) | r = 16.5-21 (the ssl-legacysurvey sample's range) | 152 px | 1e-3, theta_E 0.8-3" |
| `gzd` | r = 14-17.77 (Galaxy Zoo DECaLS: the SDSS spectroscopic limit), GZ DECaLS class mix | 152 px | 1e-3, visible |
| `bgs_bright` | r = 12-19.5 (DESI BGS Bright), semi-major half-light radius 6.4-9.6", z < 0.15 | 192 px | 1e-3, visible |
| `lens_training` | r = 16.5-19.5, half strong lenses, impostors a quarter | 152 px | 0.5, visible |

Visible lenses: Einstein radii 1.2-3" and arcs of r = 18-20.5 (the `faint` default: 0.8-3",
r = 19-21.5).

All use 0.262"/px and the DR9-south observing conditions of `observing`. The GZ DECaLS class
mix is approximate, from the volunteer vote fractions of Walmsley et al. 2022 (MNRAS 509,
3966): about half the galaxies smooth, ~10-15 % edge-on disks, bars in roughly a third of the
featured face-on disks, ~5-10 % mergers or disturbed; lenses 1e-3 and impostors 2 %.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from lvm_jax.data import ssl_schema
from lvm_jax.sim import classes
from lvm_jax.sim.scaling import Selection

VISIBLE_THETA_E = (1.2, 3.0)
VISIBLE_ARC_MAG = (18.0, 20.5)

GZD_PREVALENCE = {
    "elliptical": 0.30,
    "smooth_disk": 0.17,
    "edge_on_disk": 0.12,
    "face_on_spiral": 0.21,
    "barred_spiral": 0.10,
    "irregular_merger": 0.07,
    "strong_lens": 0.001,
    "lens_impostor": 0.02,
}
LENS_TRAINING_PREVALENCE = {
    "elliptical": 0.10,
    "smooth_disk": 0.03,
    "edge_on_disk": 0.03,
    "face_on_spiral": 0.03,
    "barred_spiral": 0.03,
    "irregular_merger": 0.03,
    "strong_lens": 0.50,
    "lens_impostor": 0.25,
}


@dataclasses.dataclass(frozen=True)
class Preset:
  """A named survey: class weights, strong-lens probability (None: from the weights), which
  targets are kept (`scaling.Selection`), stamp size (px) and pixel scale (arcsec/px)."""
  name: str
  prevalence: Mapping[str, float]
  selection: Selection
  lens_fraction: float | None = None
  stamp: int = ssl_schema.STAMP_SIZE
  pixel_scale: float = ssl_schema.PIXEL_SCALE_ARCSEC

  def with_overrides(self, prevalence: Mapping[str, float] | None = None,
                     lens_fraction: float | None = None, r_range: tuple[float, float] | None = None,
                     stamp: int | None = None, pixel_scale: float | None = None) -> Preset:
    """This preset with the given (not None) settings replaced."""
    stamp = stamp or self.stamp
    pixel_scale = pixel_scale or self.pixel_scale
    selection = dataclasses.replace(self.selection, half_stamp_arcsec=stamp * pixel_scale / 2)
    if r_range is not None:
      selection = dataclasses.replace(selection, r_range=(float(r_range[0]), float(r_range[1])))
    return dataclasses.replace(
        self, prevalence=self.prevalence if prevalence is None else dict(prevalence),
        lens_fraction=self.lens_fraction if lens_fraction is None else lens_fraction,
        selection=selection, stamp=stamp, pixel_scale=pixel_scale)


def _visible(stamp: int = ssl_schema.STAMP_SIZE, **selection) -> Selection:
  """A selection whose strong lenses are visible: Einstein radii 1.2-3", arcs r = 18-20.5."""
  return Selection(theta_e_range=VISIBLE_THETA_E, lensed_mag_range=VISIBLE_ARC_MAG,
                   half_stamp_arcsec=stamp * ssl_schema.PIXEL_SCALE_ARCSEC / 2, **selection)


PRESETS = {
    "faint": Preset("faint", classes.DEFAULT_PREVALENCE, Selection(
        half_stamp_arcsec=ssl_schema.STAMP_SIZE * ssl_schema.PIXEL_SCALE_ARCSEC / 2)),
    "gzd": Preset("gzd", GZD_PREVALENCE, _visible(r_range=(14.0, 17.77))),
    "bgs_bright": Preset("bgs_bright", GZD_PREVALENCE, _visible(
        192, r_range=(12.0, 19.5), hlr_range=(6.4, 9.6), z_range=(0.01, 0.15)), stamp=192),
    "lens_training": Preset("lens_training", LENS_TRAINING_PREVALENCE, _visible(r_range=(16.5, 19.5)),
                            lens_fraction=0.5),
}
DEFAULT_PRESET = "faint"


def get_preset(preset: str | Preset | None = None) -> Preset:
  """A `Preset` by name (default `faint`), or the one given."""
  if isinstance(preset, Preset):
    return preset
  name = preset or DEFAULT_PRESET
  if name not in PRESETS:
    raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
  return PRESETS[name]
