"""`lvm-jax hitl`: the human-in-the-loop labelling web app (`lvm_jax.hitl.app`)."""

from __future__ import annotations

import argparse
import pathlib

from lvm_jax import extras
from lvm_jax.arguments import positive_int
from lvm_jax.hitl import strategies


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "hitl", help="serve the human-in-the-loop labelling app (Panel) over an export",
      description="A browser app over lvm_jax.hitl.Session: label thumbnails by click or key "
                  "(1 yes, 0 no, u unsure, space skip, arrows move), train, get the next "
                  "round, export the labelled sample. Binds 127.0.0.1 unless --address and "
                  "--allow-origin say otherwise.")
  p.add_argument("--embeddings", required=True, type=pathlib.Path,
                 help="export directory OUT, or one .parquet/.npz file (id, ra, dec, embedding)")
  p.add_argument("--images", type=pathlib.Path, default=None,
                 help="image source: ssl HDF5 file or folder, or FITS cutout folder")
  p.add_argument("--store", type=pathlib.Path, default=None,
                 help="SQLite label log (default: in memory, lost on exit)")
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("hitl_exports"),
                 help="folder for 'export for paper' files (default ./hitl_exports)")
  p.add_argument("--export-format", choices=("parquet", "csv", "fits", "votable"),
                 default="parquet")
  p.add_argument("--port", type=int, default=5006)
  p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
  p.add_argument("--allow-origin", action="append", default=None, metavar="HOST[:PORT]",
                 help="websocket origin allowed to connect (repeatable); required with a "
                      "non-loopback --address")
  p.add_argument("--basic-auth-file", default=None, type=pathlib.Path, metavar="PATH",
                 help="require a login: a file holding USER:PASSWORD (or set "
                      "$LVM_JAX_BASIC_AUTH); the user name labels the session")
  p.add_argument("--basic-auth", default=None, metavar="USER:PASSWORD",
                 help="deprecated (the password shows in the process list): use "
                      "--basic-auth-file or $LVM_JAX_BASIC_AUTH")
  p.add_argument("--user", default="default", help="labeller name without --basic-auth")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--per-page", type=int, default=20, help="thumbnails per page (10-100)")
  p.add_argument("--per-round", type=positive_int, default=10, help="objects recommended per round")
  p.add_argument("--alpha", type=float, default=0.5)
  p.add_argument("--strategy", default="paper", choices=sorted(strategies.STRATEGIES),
                 help="recommendation strategy (lvm_jax.hitl.strategies; default paper)")
  p.add_argument("--hidden", type=positive_int, default=2048, help="MLP hidden units")
  p.add_argument("--fast-dims", type=int, default=128)
  p.add_argument("--steps", type=positive_int, default=100, help="Adam steps per round")
  p.add_argument("--audit-fraction", type=float, default=0.0)
  p.add_argument("--truth", default=None, help="catalogue column of 0/1 truth, for metrics")
  p.add_argument("--duplicate-arcsec", type=float, default=2.0,
                 help="objects closer than this are shown once (default 2 arcsec)")
  p.set_defaults(func=run_hitl)


def config_from_args(args: argparse.Namespace):
  from lvm_jax.hitl.app.data import AppConfig  # pylint: disable=g-import-not-at-top
  session = dict(per_round=args.per_round, alpha=args.alpha, strategy=args.strategy,
                 hidden=args.hidden, fast_dims=args.fast_dims, steps=args.steps,
                 audit_fraction=args.audit_fraction)
  return AppConfig(embeddings=args.embeddings, images=args.images, store=args.store,
                   out=args.out, seed=args.seed, per_page=args.per_page, user=args.user,
                   truth=args.truth, duplicate_arcsec=args.duplicate_arcsec,
                   export_format=args.export_format, session=session)


def run_hitl(args: argparse.Namespace) -> int:
  extras.require("app", command="hitl")
  from lvm_jax.hitl.app.server import basic_auth_secret, serve  # pylint: disable=g-import-not-at-top
  secret = basic_auth_secret(args.basic_auth, args.basic_auth_file)
  serve(config_from_args(args), port=args.port, address=args.address,
        allow_origin=args.allow_origin, basic_auth=secret)
  return 0
