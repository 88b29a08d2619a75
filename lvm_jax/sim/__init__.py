"""lvm_jax.sim: a simulated DESI Legacy Survey DR9 (south) of galaxy cutouts with truth.

Each galaxy is a 152 x 152 pixel (192 for the `bgs_bright` preset), 0.262 arcsec/px g, r, z
stamp in nanomaggies (AB mag m = 22.5 - 2.5 log10(flux)), written in the ssl-legacysurvey HDF5
layout (`lvm_jax.data.ssl_schema`) plus a `truth/` group.

Sky orientation (the same as the real DR9 cutouts read with astropy, CD1_1 < 0):
array index `[band, y, x]`; displayed with `origin="lower"`, north is up (+y, increasing row)
and east is left (x increases to the west). A position angle (PA) is in degrees east of north,
in [0, 180): PA = 0 puts the major axis along +y, PA = 90 along -x (east). The major-axis
direction in image coordinates is (x, y) = (-sin PA, cos PA), i.e. the angle counter-clockwise
from +x is PA + 90 degrees (what GalSim's `shear(beta=...)` takes). Rotating a stamp by
`np.rot90(img, k, axes=(-2, -1))` (counter-clockwise on screen) adds 90 k degrees to every PA.

Modules: `presets` (named surveys: `faint`, `gzd`, `bgs_bright`, `lens_training`), `classes`
(morphological classes, prevalence), `scaling` (selections, redshift, luminosity, size,
colours), `population` (the target of each class), `morphology` (bulges, disks, arms, bars,
rings, clumps, dust lanes, mergers), `dust`, `structures` (hand-drawn patterns),
`lens_systems` (strong lenses and impostors), `lensing` (SIE + shear ray tracing), `observing`
(PSF, depth, sky and photon noise, saturation), `field` (neighbours, stars, halos), `render`
(one stamp), `survey` (`simulate_survey`, `write_survey`), `survey_file` (HDF5), `realism`,
`morphometry` (statmorph measurements), `gallery`, `commands`.
Heavy imports (galsim, matplotlib) happen only inside the modules that need them.
"""

from __future__ import annotations

__all__ = ["simulate_survey", "write_survey", "CLASS_NAMES", "DEFAULT_PREVALENCE", "PRESETS", "Preset"]


def __getattr__(name: str):
  if name in ("simulate_survey", "write_survey"):
    from lvm_jax.sim import survey
    return getattr(survey, name)
  if name in ("PRESETS", "Preset"):
    from lvm_jax.sim import presets
    return getattr(presets, name)
  if name in ("CLASS_NAMES", "DEFAULT_PREVALENCE"):
    from lvm_jax.sim import classes
    return getattr(classes, name)
  raise AttributeError(name)
