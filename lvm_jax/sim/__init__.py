"""lvm_jax.sim: a simulated DESI Legacy Survey DR9 (south) of galaxy cutouts with truth.

Each galaxy is a 152 x 152 pixel, 0.262 arcsec/px g, r, z stamp in nanomaggies
(AB mag m = 22.5 - 2.5 log10(flux)), written in the ssl-legacysurvey HDF5 layout
(`lvm_jax.data.ssl_schema`) plus a `truth/` group.

Sky orientation (the same as the real DR9 cutouts read with astropy, CD1_1 < 0):
array index `[band, y, x]`; displayed with `origin="lower"`, north is up (+y, increasing row)
and east is left (x increases to the west). A position angle (PA) is in degrees east of north,
in [0, 180): PA = 0 puts the major axis along +y, PA = 90 along -x (east). The major-axis
direction in image coordinates is (x, y) = (-sin PA, cos PA), i.e. the angle counter-clockwise
from +x is PA + 90 degrees (what GalSim's `shear(beta=...)` takes). Rotating a stamp by
`np.rot90(img, k, axes=(-2, -1))` (counter-clockwise on screen) adds 90 k degrees to every PA.

Modules: `classes` (morphological classes, prevalence), `population` (per-galaxy parameters),
`observing` (PSF, depth, sky noise), `profiles` (GalSim light profiles), `lensing` (SIE + shear
ray tracing), `field` (neighbours, stars, halos), `render` (one stamp), `survey`
(`simulate_survey`, `write_survey`), `survey_file` (HDF5), `realism`, `gallery`, `commands`.
Heavy imports (galsim, matplotlib) happen only inside the modules that need them.
"""

from __future__ import annotations

__all__ = ["simulate_survey", "write_survey", "CLASS_NAMES", "DEFAULT_PREVALENCE"]


def __getattr__(name: str):
  if name in ("simulate_survey", "write_survey"):
    from lvm_jax.sim import survey
    return getattr(survey, name)
  if name in ("CLASS_NAMES", "DEFAULT_PREVALENCE"):
    from lvm_jax.sim import classes
    return getattr(classes, name)
  raise AttributeError(name)
