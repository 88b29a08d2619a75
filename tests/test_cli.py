"""The `lvm-jax` entry point."""

import subprocess
import sys

from lvm_jax import cli


def test_help_lists_commands_without_importing_heavy_libraries():
  code = ("import sys, lvm_jax.cli as c; c.build_parser(); "
          "print(sorted(m for m in ('jax', 'galsim', 'grain', 'panel') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]"
  names = set(cli.build_parser()._subparsers._group_actions[0].choices)
  assert {"convert-torch", "simulate", "reconstruct"} <= names
