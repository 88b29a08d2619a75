"""`lvm-jax evaluate`: downstream tasks on a pretrained LVM and the paper's report."""

from __future__ import annotations

import argparse
import pathlib
import sys

from lvm_jax import config as config_lib
from lvm_jax import extras


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "evaluate", help="downstream tasks on a pretrained LVM: tables, few-shot curve, report",
      description="Trains and evaluates the downstream heads of `--config "
                  "downstream:VARIANT` and writes WORKDIR/report.md (+ PNGs, "
                  "results.json). Override config fields with --config.key=value.")
  p.add_argument("--workdir", required=True, help="report, figures and results go here")
  p.add_argument("--compilation_cache", default=None, help="persistent XLA compilation cache dir")
  p.set_defaults(func=run)
  config_lib.add_config_argument(p, example="downstream:tiny")


def run(args: argparse.Namespace) -> int:
  extras.require("data", command="evaluate")
  import logging

  import jax

  from lvm_jax.downstream import evaluation, ingested, report

  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                      force=True)
  if args.compilation_cache:
    jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
  config = config_lib.config_from_args(args)
  pathlib.Path(args.workdir).mkdir(parents=True, exist_ok=True)  # fail before training
  result = evaluation.evaluate(config)
  if "ingest" in result.results:
    ingested.write(args.workdir, result.results)
  else:
    report.write(args.workdir, result, config)
  print(f"report: {args.workdir}/report.md", file=sys.stderr)
  return 0
