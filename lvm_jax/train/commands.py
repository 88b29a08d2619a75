"""`lvm-jax train`: run a training config (`--config pretrain:VARIANT`, `--config.key=value`)."""

from __future__ import annotations

import argparse
import sys

from lvm_jax import config as config_lib
from lvm_jax import extras


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "train", help="train a model from a config file (sharded, resumable)",
      description="Trains `--config pretrain:VARIANT` (or a config file path.py:VARIANT) in "
                  "WORKDIR, resuming from its latest checkpoint. Override config fields with "
                  "--config.key=value.")
  p.add_argument("--workdir", required=True, help="checkpoints, logs, galleries go here")
  p.add_argument("--init_from", default=None,
                 help="checkpoint (e.g. `lvm-jax convert-torch` output) to take params from")
  p.add_argument("--coordinator", default=None, help="host:port of process 0 (multi-process)")
  p.add_argument("--num_processes", type=int, default=None)
  p.add_argument("--process_id", type=int, default=None)
  p.add_argument("--compilation_cache", default=None, help="persistent XLA compilation cache dir")
  p.add_argument("--allow_config_change", action="store_true",
                 help="resume even if fields outside lvm_jax.train.resume.RESUMABLE changed")
  p.add_argument("--no_fallback", action="store_true",
                 help="stop if the newest checkpoint fails its digests, instead of resuming "
                      "from the newest intact step")
  p.set_defaults(func=run)
  config_lib.add_config_argument(p, example="pretrain:tiny")


def run(args: argparse.Namespace) -> int:
  extras.require("data", command="train")
  import logging

  import jax

  from lvm_jax.train import distributed
  from lvm_jax.train import trainer

  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  distributed.initialize(args.coordinator, args.num_processes, args.process_id)
  if args.compilation_cache:
    jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
  config = config_lib.config_from_args(args)
  config_lib.validate(config)
  summary = trainer.train_and_evaluate(config, args.workdir, init_from=args.init_from,
                                       allow_config_change=args.allow_config_change,
                                       fallback=not args.no_fallback)
  if jax.process_index() == 0:
    print(f"done: step {summary['step']} in {summary['seconds']:.1f} s; train {summary['train']}; "
          f"eval {summary['eval']}", file=sys.stderr)
  return 0
