"""`lvm-jax` sub-commands of lvm_jax.sim: `simulate` writes a simulated survey."""

from __future__ import annotations

import argparse

from lvm_jax import extras
from lvm_jax.arguments import positive_int


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "simulate", help="write a simulated DR9-like survey with truth (ssl-legacysurvey HDF5)",
      description="Simulate N galaxy stamps (g, r, z, 152 px, nanomaggies) with truth, e.g. "
                  "`lvm-jax simulate --n 2000 --out data/sim --seed 0 --lens-fraction 0.05`.")
  p.add_argument("--n", type=positive_int, required=True, help="number of stamps")
  p.add_argument("--out", required=True, help="output folder for images_npix152_*.h5 files")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--lens-fraction", type=float, default=None,
                 help="probability of a strong lens (default: the default prevalence, 1e-3)")
  p.add_argument("--chunk", type=positive_int, default=100_000, help="stamps per file")
  p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
  p.add_argument("--r-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                 help="target r magnitude window (default 16.5 21)")
  p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
  import time

  extras.require("sim", command="simulate")
  from lvm_jax.sim import survey
  start = time.time()
  kwargs = {"r_range": tuple(args.r_range)} if args.r_range else {}
  paths = survey.write_survey(args.out, args.n, seed=args.seed, chunk=args.chunk,
                              lens_fraction=args.lens_fraction, workers=args.workers, **kwargs)
  seconds = time.time() - start
  print(f"wrote {args.n} stamps in {len(paths)} file(s) to {args.out} "
        f"in {seconds:.1f} s ({args.n / seconds:.1f} stamps/s)")
  for path in paths:
    print(path)
  return 0
