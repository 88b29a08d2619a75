"""The ssl-legacysurvey HDF5 layout (Stein et al. 2021), read for real files and written by `lvm_jax.sim`.

One file holds N galaxies, named like `images_npix152_000000000_001000000.h5`:

| dataset | shape, dtype | meaning |
| --- | --- | --- |
| `images` | (N, 3, 152, 152) float32 | g, r, z cutouts in nanomaggies, 0.262 arcsec/px, channel-first |
| `ra`, `dec` | (N,) float64 | ICRS degrees of the cutout centre |
| `release`, `brickid`, `objid` | (N,) int64 | Legacy Survey ids; (release, brickid, objid) is unique |
| `flux` | (N, 3) float32 | g, r, z model fluxes, nanomaggies |
| `psfsize` | (N, 3) float32 | g, r, z PSF FWHM, arcsec |
| `psfdepth` | (N, 3) float32 | g, r, z 5-sigma point-source depth, 1/nanomaggies^2 (inverse variance) |
| `ebv` | (N,) float32 | Galactic E(B-V), mag |
| `z_phot_median` | (N,) float32 | photometric redshift (NaN when unknown) |
| `z_spec` | (N,) float32 | spectroscopic redshift (NaN or -99 when unknown) |
| `source_type` | (N,) bytes | Tractor morphological type (`DEV`, `EXP`, `SER`, `REX`, `PSF`) |

The simulated survey writes the same datasets plus a group `truth/` (one dataset per truth column,
see `lvm_jax.sim`), which readers of real files ignore.
"""

BANDS = ("g", "r", "z")
PIXEL_SCALE_ARCSEC = 0.262
STAMP_SIZE = 152
IMAGES = "images"
ID_COLUMNS = ("release", "brickid", "objid")
CATALOGUE_COLUMNS = {
    # name: (per-galaxy shape, numpy dtype)
    "ra": ((), "float64"),
    "dec": ((), "float64"),
    "release": ((), "int64"),
    "brickid": ((), "int64"),
    "objid": ((), "int64"),
    "flux": ((3,), "float32"),
    "psfsize": ((3,), "float32"),
    "psfdepth": ((3,), "float32"),
    "ebv": ((), "float32"),
    "z_phot_median": ((), "float32"),
    "z_spec": ((), "float32"),
    "source_type": ((), "S3"),
}
TRUTH_GROUP = "truth"
# Optional (N,) UTF-8 bytes: a catalogue's own id (`lvm-jax ingest`), used as the record id
# instead of f"{release}_{brickid}_{objid}".
ROW_ID = "id"


def file_name(start: int, stop: int, npix: int = STAMP_SIZE) -> str:
  """The survey's file naming, e.g. `images_npix152_000000000_001000000.h5`."""
  return f"images_npix{npix}_{start:09d}_{stop:09d}.h5"

# HDF5 compressions of the images a shard may use; "none" reads fastest.
COMPRESSIONS = ("none", "lzf", "gzip")
