"""Mapping PyTorch state dicts onto lvm-jax parameters, the CLI and the checkpoint round trip."""

import ast
import json
import logging

import jax
import numpy as np
import pytest

from lvm_jax import checkpoint
from lvm_jax import cli
from lvm_jax import convert
from lvm_jax import models
from lvm_jax.convert import torch_to_flax


def _key_shapes(path):
  for line in path.read_text().splitlines():
    name, shape = line.split("\t")
    yield name, tuple(ast.literal_eval(shape))


def _random_state(path, seed=0):
  """Random float32 values for every name in a *_keys.txt (derived buffers computed for real)."""
  entries = list(_key_shapes(path))
  total = sum(int(np.prod(s)) for n, s in entries)
  pool = np.random.default_rng(seed).standard_normal(total, np.float32)
  state, offset = {}, 0
  for name, shape in entries:
    n = int(np.prod(shape))
    if name.endswith("relative_position_index"):
      w = int(round(np.sqrt(shape[0])))
      from lvm_jax.models import windows
      state[name] = windows.relative_position_index(w).astype(np.int64)
    else:
      state[name] = pool[offset:offset + n].reshape(shape)
    offset += n
  return state


@pytest.mark.needs_shared
def test_published_lvm_keys_convert_completely(reference_dir, caplog):
  state = _random_state(reference_dir / "lvm_100m_keys.txt")
  state = {f"module.swin_unet.{k}": v for k, v in state.items()}
  with caplog.at_level(logging.WARNING):
    params = convert.params_from_torch(state, models.preset("lvm_100m"))
  assert "never uses" in caplog.text
  assert models.count_params(params) == 100_460_721 - 790_565
  qkv = state["module.swin_unet.layers.2.blocks.3.attn.qkv.weight"]
  np.testing.assert_array_equal(params["layers_2"]["blocks_3"]["attn"]["qkv"]["kernel"], qkv.T)
  conv = state["module.swin_unet.up.up_p.0.weight"]
  np.testing.assert_array_equal(params["up"]["up_p_0"]["kernel"], conv.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["low_conv"]["bias"], state["module.swin_unet.low_conv.bias"])


@pytest.mark.needs_shared
def test_sunet_keys_round_trip(reference_dir):
  state = _random_state(reference_dir / "sunet_100m_keys.txt", seed=1)
  params = convert.params_from_torch(state, models.preset("sunet_100m"))
  assert models.count_params(params) == 99_672_457
  back = convert.params_to_torch(params)
  learned = {k: v for k, v in state.items() if k.split(".")[-1] not in
             torch_to_flax.DERIVED_BUFFERS}
  assert set(back) == set(learned)
  for k in ("prelu.weight", "layers.0.downsample.reduction.weight", "norm_up.weight"):
    np.testing.assert_array_equal(back[k], learned[k])


def test_errors_list_missing_unexpected_and_mismatched(tiny):
  config, _, params = tiny
  state = convert.params_to_torch(params)
  del state["norm.weight"]
  state["extra.weight"] = np.zeros(3, np.float32)
  state["layers.0.blocks.0.attn.qkv.weight"] = np.zeros((5, 5), np.float32)
  with pytest.raises(convert.ConversionError) as info:
    convert.params_from_torch(state, config)
  text = str(info.value)
  assert "missing: norm/scale" in text
  assert "unexpected: extra.weight" in text
  assert "mismatched: layers.0.blocks.0.attn.qkv.weight" in text


def test_wrong_relative_position_index_is_reported(tiny):
  config, _, params = tiny
  state = convert.params_to_torch(params)
  state["layers.0.blocks.0.attn.relative_position_index"] = np.zeros((16, 16), np.int64)
  with pytest.raises(convert.ConversionError, match="relative position index"):
    convert.params_from_torch(state, config)


@pytest.mark.needs_shared
def test_cli_convert_and_checkpoint_round_trip(reference_dir, tmp_path):
  """convert-torch on the reference npz, reload the checkpoint: same outputs as the reference."""
  ref = np.load(reference_dir / "sunet_tiny128.npz")
  meta = json.loads(str(ref["meta"]))
  overrides = [f"{k}={v}" for k, v in meta["config"].items()]
  out = tmp_path / "ckpt"
  assert cli.main(["convert-torch", "--preset", "sunet_100m", *sum([["--set", o] for o in overrides], []),
                   str(reference_dir / "sunet_tiny128.npz"), str(out)]) == 0
  restored = checkpoint.restore(out)
  assert restored["meta"]["source"]["kind"] == "converted_torch"
  assert len(restored["meta"]["source"]["sha256"]) == 64
  assert restored["meta"]["preprocessing"]["mode"] == "paper"
  assert restored["meta"]["git_sha"]
  config = models.preset("sunet_100m")
  config.update(restored["config"]["model"])
  module = models.build(config)
  with jax.default_matmul_precision("highest"):
    y = jax.jit(lambda p, x: module.apply({"params": p}, x)["reconstruction"])(
        restored["params"], ref["input_nchw"].transpose(0, 2, 3, 1))
  expected = ref["output_nchw"].transpose(0, 2, 3, 1)
  assert np.abs(np.asarray(y) - expected).max() <= 1e-5 * np.abs(expected).max()
  with pytest.raises(SystemExit, match="not empty"):
    cli.main(["convert-torch", "--preset", "sunet_100m", *sum([["--set", o] for o in overrides], []),
              str(reference_dir / "sunet_tiny128.npz"), str(out)])
