"""`lvm-jax` sub-commands of lvm_jax.detect: `detect` (lenses in a FITS field), `train-detector`
(train and evaluate detectors on simulated fields), `simulate-fields`."""

from __future__ import annotations

import argparse
import pathlib

from lvm_jax import config as config_lib
from lvm_jax import extras
from lvm_jax.arguments import positive_int
from lvm_jax.errors import ConfigError


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "detect", help="find strong lenses in a FITS field with a detector checkpoint",
      description="Tiles a g, r, z FITS field (planes named by BANDn keywords, celestial WCS) as "
                  "the checkpoint's preprocessing says, runs the lens detector and writes "
                  "OUT/<stem>_lenses.csv (ra, dec, score, box, mask area; provenance in "
                  "<csv>.json) and OUT/<stem>_overlay.png, e.g. "
                  "`lvm-jax detect --checkpoint runs/detect/lvm_finetune_s0 --fits field.fits`.")
  p.add_argument("--checkpoint", required=True, type=pathlib.Path, help="detector checkpoint directory")
  p.add_argument("--fits", required=True, type=pathlib.Path, help="the field's FITS file")
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("detections"),
                 help="output folder (default ./detections)")
  p.add_argument("--threshold", type=float, default=None,
                 help="minimum score (default: the checkpoint's operating point)")
  p.add_argument("--lenses", type=pathlib.Path, default=None,
                 help="optional CSV of known lenses (ra, dec, radius_arcsec) drawn on the overlay")
  p.set_defaults(func=_detect)

  t = subparsers.add_parser(
      "train-detector", help="train and evaluate lens detectors on simulated fields",
      description="Simulates the fields of `config.fields` into WORKDIR/fields (once), trains "
                  "each backbone of `config.backbones` for each of `config.seeds`, picks each "
                  "run's operating point on the val fields, evaluates it on the test and "
                  "impostor fields and writes WORKDIR/runs/<backbone>_s<seed>/{checkpoint, "
                  "result.json} and WORKDIR/results.{json,md}. Finished runs are not redone.")
  t.add_argument("--workdir", required=True, type=pathlib.Path,
                 help="fields, runs (checkpoints) and results go here")
  t.set_defaults(func=_train_detector)
  config_lib.add_config_argument(t, example="detect:tiny")

  s = subparsers.add_parser(
      "simulate-fields", help="simulate wide fields with strong lenses (HDF5, with masks)",
      description="Writes N simulated g, r, z fields with lenses, impostors, galaxies and stars "
                  "and the lenses' boxes and masks (lvm_jax.detect.fields).")
  s.add_argument("--n", type=positive_int, required=True)
  s.add_argument("--out", type=pathlib.Path, required=True, help="output .h5 file")
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--size", type=positive_int, default=288, help="field side, pixels (0.262 arcsec)")
  s.add_argument("--lenses", type=int, nargs=2, default=(0, 2), metavar=("MIN", "MAX"))
  s.add_argument("--impostor-fraction", type=float, default=0.15)
  s.add_argument("--workers", type=positive_int, default=1)
  s.set_defaults(func=_simulate)


def _detect(args: argparse.Namespace) -> int:
  extras.require("data", command="detect")
  from lvm_jax.data.validate import UnreadableFileError
  from lvm_jax.detect import catalogue
  try:
    out = catalogue.detect_fits(args.checkpoint, args.fits, args.out, args.threshold, args.lenses)
  except (ValueError, UnreadableFileError, FileNotFoundError) as e:
    raise SystemExit(f"lvm-jax detect: {e}") from e
  print(f"{out['n_detections']} detections: {out['catalogue']}, {out['overlay']}")
  return 0


def _train_detector(args: argparse.Namespace) -> int:
  extras.require("sim", command="train-detector")
  import shlex
  import sys

  from lvm_jax.detect import runs
  config = config_lib.config_from_args(args)
  unknown = set(config.backbones) - set(_backbones())
  if unknown:
    raise ConfigError(f"--config.backbones: unknown {sorted(unknown)}; known: "
                      f"{list(_backbones())}")
  done = runs.train_and_evaluate(config, args.workdir,
                                 command=shlex.join(["lvm-jax", *sys.argv[1:]]))
  print(done["table"])
  print(f"results: {args.workdir / 'results.json'}; detectors: {args.workdir / 'runs'}",
        file=sys.stderr)
  return 0


def _backbones() -> tuple[str, ...]:
  from lvm_jax.detect.model import BACKBONES
  return BACKBONES


def _simulate(args: argparse.Namespace) -> int:
  extras.require("sim", command="simulate-fields")
  from lvm_jax.detect import fields
  spec = fields.FieldSpec(size=args.size, lenses=tuple(args.lenses),
                          impostor_fraction=args.impostor_fraction)
  fl = fields.simulate_fields(args.n, args.seed, spec, workers=args.workers)
  path = fields.write_fields(args.out, fl, seed=args.seed, spec=spec.to_dict())
  print(f"wrote {len(fl)} fields ({sum(f.num_lenses for f in fl)} lenses) to {path}")
  return 0
