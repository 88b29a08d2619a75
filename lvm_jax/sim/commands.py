"""`lvm-jax` sub-commands of lvm_jax.sim: `simulate` writes a simulated survey."""

from __future__ import annotations

import argparse

from lvm_jax import extras
from lvm_jax.arguments import positive_int

# The names of `lvm_jax.sim.presets.PRESETS`, here so that the parser does not import the
# simulator (and GalSim); a test keeps the two in step.
PRESET_NAMES = ("faint", "gzd", "bgs_bright", "lens_training")


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "simulate", help="write a simulated DR9-like survey with truth (ssl-legacysurvey HDF5)",
      description="Simulate N galaxy stamps (g, r, z, nanomaggies) with truth, e.g. "
                  "`lvm-jax simulate --n 2000 --out data/sim --seed 0 --lens-fraction 0.05` or "
                  "`lvm-jax simulate --preset gzd --n 2000 --out data/gzd`.")
  p.add_argument("--preset", choices=PRESET_NAMES, default="faint",
                 help="named survey: faint (default; r 16.5-21, 152 px), gzd (Galaxy Zoo DECaLS-like, "
                      "r < 17.77), bgs_bright (half-light radius 6.4-9.6\", 192 px), lens_training "
                      "(half strong lenses, Einstein radii 1.2-3\")")
  p.add_argument("--n", type=positive_int, required=True, help="number of stamps")
  p.add_argument("--out", required=True, help="output folder for images_npix152_*.h5 files")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--lens-fraction", type=float, default=None,
                 help="probability of a strong lens (default: the preset's, 1e-3 but for lens_training)")
  p.add_argument("--chunk", type=positive_int, default=100_000, help="stamps per file")
  p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
  p.add_argument("--r-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                 help="target r magnitude window (default: the preset's, 16.5 21 for faint)")
  p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
  import time

  extras.require("sim", command="simulate")
  from lvm_jax.sim import survey
  start = time.time()
  paths = survey.write_survey(args.out, args.n, seed=args.seed, chunk=args.chunk,
                              lens_fraction=args.lens_fraction, workers=args.workers,
                              r_range=tuple(args.r_range) if args.r_range else None, preset=args.preset)
  seconds = time.time() - start
  print(f"wrote {args.n} stamps in {len(paths)} file(s) to {args.out} "
        f"in {seconds:.1f} s ({args.n / seconds:.1f} stamps/s)")
  for path in paths:
    print(path)
  return 0
