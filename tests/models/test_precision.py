"""The mixed-precision policy: bf16 dots with float32 parameters, float32 logits and outputs."""

import re

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax import models

# Stated tolerances of bfloat16 against float32, relative to the float32 output's std.
BF16_MAX_ERROR = 0.15
BF16_RMS_ERROR = 0.03


def _bf16(config):
  config = config.copy_and_resolve_references()
  config.dtype = "bfloat16"
  return models.build(config)


def test_bf16_emits_bf16_dots_and_keeps_float32_where_it_matters(tiny):
  config, _, params = tiny
  module = _bf16(config)
  x = jnp.ones((2, 64, 64, 3))
  hlo = jax.jit(lambda p, x: module.apply({"params": p}, x)).lower(params, x).as_text()
  dots = re.findall(r"stablehlo\.dot_general.*", hlo)
  convs = re.findall(r"stablehlo\.convolution.*", hlo)
  assert dots and convs
  operand_types = lambda op: re.findall(r"tensor<[^>]*x(\w+)>", op.split(":")[-1])
  # Products of float32 parameters only, not compute on activations, all HIGHEST precision: the
  # relative-position bias lookup (one-hot x table), one per Swin block (8 encoder + 6 decoder
  # blocks in `tiny`); the composed kernels of the 4 dual up-samplers (2 each) and of the
  # patch embedding (9 kernel taps + 1 bias). No other dot has float32 operands.
  lookups = [op for op in dots if operand_types(op)[:2] == ["f32", "f32"]]
  assert len(lookups) == 14 + 4 * 2 + 10 and all("HIGHEST" in op for op in lookups)
  dots = [op for op in dots if op not in lookups]
  for op in dots + convs:
    ins = operand_types(op)[:2]
    assert ins == ["bf16", "bf16"], op[-160:]
  # Attention logits: bf16 inputs, float32 result (preferred_element_type).
  assert any(operand_types(op)[2] == "f32" for op in dots)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


def test_float32_default_has_no_bf16(tiny):
  _, module, params = tiny
  x = jnp.ones((1, 64, 64, 3))
  hlo = jax.jit(lambda p, x: module.apply({"params": p}, x)).lower(params, x).as_text()
  assert "bf16" not in hlo


def test_bf16_outputs_within_stated_tolerance(tiny):
  config, module, params = tiny
  x = jnp.abs(jax.random.normal(jax.random.key(2), (4, 64, 64, 3)))
  ref = jax.jit(lambda p, x: module.apply({"params": p}, x))(params, x)
  bf16 = _bf16(config)
  out = jax.jit(lambda p, x: bf16.apply({"params": p}, x))(params, x)
  for key in ("reconstruction", "bottleneck", "embedding"):
    assert out[key].dtype == jnp.float32
    a, b = np.asarray(out[key]), np.asarray(ref[key])
    assert np.abs(a - b).max() <= BF16_MAX_ERROR * b.std(), key
    assert np.sqrt(((a - b) ** 2).mean()) <= BF16_RMS_ERROR * b.std(), key
    assert np.abs(a - b).max() > 0  # it really ran in lower precision
