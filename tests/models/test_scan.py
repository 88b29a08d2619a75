"""Scanned Swin stages: the same function and parameter tree as the unrolled blocks."""

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax import models
from lvm_jax.models import swin

_FIELDS = dict(models.PRESETS["tiny"], img_size=32, embed_dim=16, depths=(4, 2, 2, 2),
               num_heads=(2, 2, 2, 2), drop_path_rate=0.2)


def _stage(scan: bool) -> swin.SwinStage:
  return swin.SwinStage(4, 2, 4, 4.0, True, None, 0.0, 0.0, [0.0, 0.1, 0.2, 0.3], "none",
                        False, jnp.float32, scan)


def test_scanned_stage_matches_unrolled_blocks():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 16)), jnp.float32)
  params = _stage(False).init(jax.random.key(0), x, False)
  assert set(params["params"]) == {f"blocks_{i}" for i in range(4)}
  assert jax.tree_util.tree_structure(_stage(True).init(jax.random.key(0), x, False)) == \
      jax.tree_util.tree_structure(params)

  def loss(p, scan):
    return jnp.sum(_stage(scan).apply(p, x, False) ** 2)

  np.testing.assert_allclose(_stage(True).apply(params, x, False),
                             _stage(False).apply(params, x, False), rtol=1e-5, atol=1e-5)
  g_scan, g_loop = jax.grad(loss)(params, True), jax.grad(loss)(params, False)
  for a, b in zip(jax.tree_util.tree_leaves(g_scan), jax.tree_util.tree_leaves(g_loop)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(np.abs(b).max()))


def test_scanned_stage_drops_paths_in_training():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 8, 8, 16)), jnp.float32)
  params = _stage(True).init(jax.random.key(0), x, False)
  rngs = {"dropout": jax.random.key(3)}
  train = _stage(True).apply(params, x, True, rngs=rngs)
  again = _stage(True).apply(params, x, True, rngs=rngs)
  np.testing.assert_array_equal(train, again)  # reproducible from the key
  assert float(jnp.abs(train - _stage(True).apply(params, x, False)).max()) > 1e-3


def test_scanned_model_matches_unrolled_model():
  module = models.build(_FIELDS)
  params = models.init_params(module, 0)
  x = jnp.asarray(np.abs(np.random.default_rng(2).normal(size=(2, 32, 32, 3))), jnp.float32)
  ours = module.apply({"params": params}, x)["reconstruction"]
  assert module.scan
  loop = module.clone(scan=False).apply({"params": params}, x)["reconstruction"]
  np.testing.assert_allclose(ours, loop, rtol=1e-5, atol=1e-5)
