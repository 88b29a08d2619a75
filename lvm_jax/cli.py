"""The `lvm-jax` command line: one entry point, one sub-command per job.

Each sub-command lives beside the code it drives, in a `commands.py` module that exposes
`register(subparsers)`; those modules import heavy libraries (jax, galsim) only inside the
command's function, so `lvm-jax --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from lvm_jax import demo
from lvm_jax.convert import commands as convert_commands
from lvm_jax.data import commands as data_commands
from lvm_jax.detect import commands as detect_commands
from lvm_jax.export import commands as export_commands
from lvm_jax.hitl import commands as hitl_commands
from lvm_jax.sim import commands as sim_commands
from lvm_jax.downstream import commands as tasks_commands
from lvm_jax.train import commands as train_commands

_COMMAND_MODULES = (convert_commands, data_commands, demo, detect_commands, export_commands,
                    hitl_commands, sim_commands, tasks_commands, train_commands)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="lvm-jax", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  for module in _COMMAND_MODULES:
    module.register(sub)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  return int(args.func(args) or 0)


if __name__ == "__main__":
  sys.exit(main())
