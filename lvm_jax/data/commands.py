"""`lvm-jax` sub-commands of lvm_jax.data: `reconstruct` draws a checkpoint's reconstructions."""

from __future__ import annotations

import argparse
import pathlib

from lvm_jax import extras


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "reconstruct", help="reconstruct FITS cutouts with a checkpoint: PNG panels and MSE",
      description="Preprocesses g, r, z FITS cutouts as the checkpoint records, runs the model and "
                  "writes per cutout OUT/<id>.png (input | reconstruction | r residual in sky "
                  "sigmas) and OUT/reconstruct.json (MSE per cutout, provenance), e.g. "
                  "`lvm-jax reconstruct --checkpoint runs/tiny --out recon cutout_*.fits`.")
  p.add_argument("--checkpoint", required=True, type=pathlib.Path,
                 help="lvm-jax checkpoint directory (latest step is used)")
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("reconstruct"),
                 help="output folder (default ./reconstruct)")
  p.add_argument("fits", nargs="+", type=pathlib.Path, metavar="FITS", help="cutout files")
  p.set_defaults(func=_reconstruct)


def _reconstruct(args: argparse.Namespace) -> int:
  extras.require("data", command="reconstruct")
  from lvm_jax.export import reconstruct
  from lvm_jax.data.validate import UnreadableFileError

  try:
    report = reconstruct.reconstruct_files(args.checkpoint, args.fits, args.out)
  except (ValueError, UnreadableFileError, FileNotFoundError) as e:
    raise SystemExit(f"lvm-jax reconstruct: {e}") from e
  for row in report["cutouts"]:
    print(f"{row['png']}  MSE {row['mse']:.5g} {report['mse_units']}")
  print(f"wrote {args.out / 'reconstruct.json'}")
  return 0
