"""`lvm-jax checkpoint verify DIR`: every step's files against their SHA-256 digests, no model."""

from __future__ import annotations

import argparse
import pathlib


def register(subparsers) -> None:
  p = subparsers.add_parser("checkpoint", help="inspect checkpoints (verify digests)")
  sub = p.add_subparsers(dest="checkpoint_command", required=True, metavar="ACTION")
  v = sub.add_parser("verify", help="check every step of a checkpoint folder against its digests",
                     description="Recomputes the SHA-256 of every file of every step (or of "
                                 "--step) and compares them with the digests recorded at save. "
                                 "Exit status 0: all intact; 1: a step is damaged; steps "
                                 "without digests (older checkpoints) are reported, not failed.")
  v.add_argument("directory", type=pathlib.Path, help="checkpoint folder (numbered steps)")
  v.add_argument("--step", type=int, default=None, help="only this step")
  v.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
  from lvm_jax import checkpoint  # pylint: disable=g-import-not-at-top
  if args.step is None:
    report = checkpoint.verify(args.directory)
  else:
    checkpoint.resolve_step(args.directory, args.step)
    report = {args.step: checkpoint.check_step(args.directory, args.step)}
  damaged = 0
  for step, problems in sorted(report.items()):
    if not problems:
      print(f"step {step}: ok")
    elif problems[0][0] == "(digests)":
      print(f"step {step}: unchecked, {problems[0][1]}")
    else:
      damaged += 1
      for item, what in problems:
        print(f"step {step}: DAMAGED item {item}: {what}")
  print(f"{args.directory}: {len(report)} steps, {damaged} damaged")
  return 1 if damaged else 0
