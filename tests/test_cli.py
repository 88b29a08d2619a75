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


def test_demo_holds_out_part_of_a_small_survey(tmp_path):
  """`lvm-jax demo --n 300` used to fail: the tiny preset holds out 500 galaxies."""
  from lvm_jax import demo
  small = demo.pretrain_config(tmp_path, 300, 5, 0)
  assert 0 < small.data.val_size < 300 and small.num_steps == 5
  assert small.data.files == f"{tmp_path}/*.h5"
  assert demo.pretrain_config(tmp_path, 3000, None, 0).data.val_size == 500
