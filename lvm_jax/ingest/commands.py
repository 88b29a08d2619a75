"""`lvm-jax ingest`: a folder of labelled cutouts + a CSV -> the survey format (`layout`)."""

from __future__ import annotations

import argparse
import pathlib

from lvm_jax import extras
from lvm_jax.data import ssl_schema
from lvm_jax.arguments import non_negative_int, positive_int


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "ingest", help="write a folder of labelled FITS/JPEG/PNG cutouts + CSV as a survey",
      description="Reads the CSV (id, file relative to FOLDER, optional ra/dec, any label and "
                  "catalogue columns), checks every image (bad ones are quarantined with a "
                  "reason in OUT/rejects.parquet) and writes ssl-layout HDF5 shards, "
                  "OUT/manifest.json, OUT/rows.parquet, OUT/report.json and seeded, stratified "
                  "split lists in OUT/splits/. Rerun the same command to resume after a kill. "
                  "E.g. `lvm-jax ingest images/ --catalogue labels.csv --out survey "
                  "--label-column class_name --pretrain 0.5`.")
  p.add_argument("folder", type=pathlib.Path, help="the image folder")
  p.add_argument("--catalogue", required=True, type=pathlib.Path, help="the CSV")
  p.add_argument("--out", required=True, type=pathlib.Path, help="output survey folder")
  p.add_argument("--id-column", default="id", help="CSV column of unique ids (default id)")
  p.add_argument("--file-column", default="file",
                 help="CSV column of image paths relative to FOLDER (default file)")
  p.add_argument("--ra-column", default="ra", help="ICRS deg (default ra; used when present)")
  p.add_argument("--dec-column", default="dec", help="ICRS deg (default dec; used when present)")
  p.add_argument("--label-column", default=None, help="stratify the splits by this column")
  p.add_argument("--kind", choices=("auto", "flux", "display_rgb"), default="auto",
                 help="image kind (default: from the file suffixes: FITS flux, JPEG/PNG "
                      "display_rgb)")
  p.add_argument("--bands", default="g,r,z", help="FITS bands to store, in order (default g,r,z)")
  p.add_argument("--stamp", type=positive_int, default=None,
                 help="centre-crop to a square and resize every image to STAMP px (default: "
                      "keep the first image's size; other sizes are quarantined)")
  p.add_argument("--min-size", type=positive_int, default=16,
                 help="quarantine images with a side below this, px (default 16)")
  p.add_argument("--shard-size", type=positive_int, default=512,
                 help="catalogue rows per shard file (default 512)")
  p.add_argument("--compression", choices=ssl_schema.COMPRESSIONS, default="lzf",
                 help="of the stored images (default lzf)")
  p.add_argument("--splits", default="train=0.8,val=0.1,test=0.1",
                 help="split fractions NAME=F,... (default train=0.8,val=0.1,test=0.1; '' for "
                      "none)")
  p.add_argument("--pretrain", type=float, default=0.0,
                 help="share of each class put in a `pretrain` split disjoint from the others "
                      "(default 0: none)")
  p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
  p.add_argument("--workers", type=non_negative_int, default=1,
                 help="reader processes (default 1)")
  p.add_argument("--overwrite", action="store_true",
                 help="replace an ingest made with other options in OUT")
  p.add_argument("--no-progress", action="store_true", help="no progress line")
  p.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
  extras.require("data", command="ingest")
  from lvm_jax.ingest import builder, report, splits
  fractions = splits.parse_fractions(args.splits, args.pretrain) if (
      args.splits or args.pretrain) else {}
  options = builder.IngestOptions(
      id_column=args.id_column, file_column=args.file_column, ra_column=args.ra_column,
      dec_column=args.dec_column, label_column=args.label_column, kind=args.kind,
      bands=tuple(b for b in args.bands.split(",") if b), stamp=args.stamp,
      min_size=args.min_size, shard_size=args.shard_size, compression=args.compression,
      seed=args.seed, fractions=tuple(fractions.items()), workers=max(1, args.workers),
      overwrite=args.overwrite)
  summary = builder.ingest(args.folder, args.catalogue, args.out, options,
                           progress=not args.no_progress)
  print(report.describe(summary, args.out))
  return 0
