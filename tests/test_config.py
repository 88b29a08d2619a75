"""`lvm_jax.config`: packaged config names, config files, the old `configs/x.py` spelling, overrides."""

from __future__ import annotations

import argparse

import ml_collections
import pytest

from lvm_jax import config as config_lib


def test_packaged_names_load_with_and_without_a_variant():
  assert {"pretrain", "downstream", "export", "detect"} <= set(config_lib.names())
  assert config_lib.load_config("pretrain:tiny").model.img_size == 64
  assert config_lib.load_config("pretrain").model.img_size == 128  # the default variant
  assert config_lib.load_config("export:cpu").compute_dtype == "float32"
  assert config_lib.load_config("downstream:quick").variant == "quick"


def test_a_config_file_and_the_source_checkout_spelling(tmp_path, monkeypatch):
  path = tmp_path / "mine.py"
  path.write_text("import ml_collections\n\ndef get_config(arg=None):\n"
                  "  return ml_collections.ConfigDict(dict(arg=arg, n=1))\n")
  assert config_lib.load_config(f"{path}:abc").arg == "abc"
  assert config_lib.load_config(str(path)).arg is None
  # `configs/pretrain.py:tiny` from a folder without such a file: the packaged `pretrain`
  monkeypatch.chdir(tmp_path)
  assert config_lib.load_config("configs/pretrain.py:tiny").batch_size == 32
  # a file that is there wins over the packaged config of the same name
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "pretrain.py").write_text(path.read_text())
  assert config_lib.load_config("configs/pretrain.py:x").arg == "x"


def test_unknown_names_and_missing_files_are_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown config 'pretrian'.*pretrain"):
    config_lib.load_config("pretrian:tiny")
  with pytest.raises(FileNotFoundError, match="nope.py not found"):
    config_lib.load_config(f"{tmp_path}/nope.py:tiny")
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.load_config("pretrain:huge")


def test_overrides_on_the_command_line():
  p = argparse.ArgumentParser()
  config_lib.add_config_argument(p, default="export")
  args = p.parse_args(["--config.batch=32", "--config.carry", "('a', 'b')"])
  c = config_lib.config_from_args(args)
  assert c.batch == 32 and list(c.carry) == ["a", "b"] and c.workers == 8
  args = p.parse_args(["--config", "export:cpu", "--config.nope=1"])
  with pytest.raises(KeyError, match="nope"):
    config_lib.config_from_args(args)


def test_export_settings_defaults_are_the_export_config():
  from lvm_jax.export import ExportSettings
  c = config_lib.load_config("export")
  d = ExportSettings()
  assert (d.batch, d.chunk_size, d.workers, d.compute_dtype) == (
      c.batch, c.chunk_size, c.workers, c.compute_dtype)
  cpu = ExportSettings.from_config("export:cpu", carry=["x"])
  assert cpu.batch == config_lib.load_config("export:cpu").batch and cpu.carry == ("x",)


def test_none_only_for_fields_whose_none_has_a_meaning():
  config = ml_collections.ConfigDict({"model": {"qk_scale": 8.0, "mlp_ratio": 4.0}})
  assert config_lib.apply_overrides(config, ["model.qk_scale=None"]).model.qk_scale is None
  with pytest.raises(config_lib.ConfigError, match="mlp_ratio=None"):
    config_lib.apply_overrides(config, ["model.mlp_ratio=None"])
