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
  assert {"convert-torch", "simulate", "reconstruct", "train-detector", "detect"} <= names


def test_demo_holds_out_part_of_a_small_survey(tmp_path):
  """`lvm-jax demo --n 300` used to fail: the tiny preset holds out 500 galaxies."""
  from lvm_jax import demo
  small = demo.pretrain_config(tmp_path, 300, 5, 0)
  assert 0 < small.data.val_size < 300 and small.num_steps == 5
  assert small.data.files == f"{tmp_path}/*.h5"
  assert demo.pretrain_config(tmp_path, 3000, None, 0).data.val_size == 500


def test_demo_serves_the_app_itself(tmp_path, monkeypatch):
  """The demo's last step calls the HITL app's `serve` (not `lvm-jax hitl` through the CLI)."""
  from lvm_jax import demo
  from lvm_jax.hitl.app import server
  served = {}
  monkeypatch.setattr(demo, "simulate", lambda workdir, n, seed, preset: workdir / "survey")
  monkeypatch.setattr(demo, "export", lambda workdir, checkpoint, survey: workdir / "embeddings")
  monkeypatch.setattr(server, "serve", lambda config, **kw: served.update(config=config, **kw))
  monkeypatch.delenv("LVM_JAX_BASIC_AUTH", raising=False)
  assert cli.main(["demo", "--workdir", str(tmp_path), "--checkpoint", str(tmp_path / "ckpt"),
                   "--port", "5123", "--seed", "3"]) == 0
  config = served["config"]
  assert (config.embeddings, config.images) == (tmp_path / "embeddings", tmp_path / "survey")
  assert (config.store, config.out) == (tmp_path / "labels.sqlite", tmp_path / "hitl_exports")
  assert config.seed == 3 and config.per_page == 20 and config.session == {"strategy": "similar"}
  assert served["port"] == 5123 and served["basic_auth"] is None
