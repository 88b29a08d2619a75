"""The `lvm-jax` command line: one entry point, one sub-command per job.

Each sub-command lives beside the code it drives, in a `commands.py` module that exposes
`register(subparsers)`; those modules import heavy libraries (jax, galsim) only inside the
command's function, so `lvm-jax --help` stays fast.

A user's mistake (`lvm_jax.errors.UserError`, a missing file) is printed on one line as
`lvm-jax COMMAND: error: ...` with exit status 2 and no traceback; `--debug` (or
`LVM_JAX_DEBUG=1`) re-raises it with its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from lvm_jax import checkpoint_commands
from lvm_jax import demo
from lvm_jax.convert import commands as convert_commands
from lvm_jax.data import commands as data_commands
from lvm_jax.detect import commands as detect_commands
from lvm_jax.export import commands as export_commands
from lvm_jax.hitl import commands as hitl_commands
from lvm_jax.ingest import commands as ingest_commands
from lvm_jax.sim import commands as sim_commands
from lvm_jax.downstream import commands as tasks_commands
from lvm_jax.train import commands as train_commands
from lvm_jax.errors import UserError

_COMMAND_MODULES = (checkpoint_commands, convert_commands, data_commands, demo, detect_commands,
                    export_commands, hitl_commands, ingest_commands, sim_commands, tasks_commands,
                    train_commands)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="lvm-jax", description=__doc__.splitlines()[0])
  parser.add_argument("--debug", action="store_true",
                      help="show the traceback of user errors too (or LVM_JAX_DEBUG=1)")
  sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  for module in _COMMAND_MODULES:
    module.register(sub)
  return parser


def error_line(command: str, error: BaseException) -> str:
  """`lvm-jax COMMAND: error: message` on one line."""
  message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
  if isinstance(error, FileNotFoundError) and error.filename and not error.args[1:]:
    message = f"{error.filename}: no such file or directory"
  elif isinstance(error, FileNotFoundError) and error.filename:
    message = f"{error.filename}: {error.strerror}"
  return f"lvm-jax {command}: error: " + " ".join(str(message).split())


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  debug = args.debug or os.environ.get("LVM_JAX_DEBUG", "") not in ("", "0")
  try:
    return int(args.func(args) or 0)
  except (UserError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
    if debug:
      raise
    print(error_line(args.command, e), file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
