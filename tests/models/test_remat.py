"""Per-block rematerialisation: same parameters, same gradients, recomputation in the graph."""

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax import models

SMALL = dict(models.PRESETS["tiny"], img_size=32, embed_dim=16, depths=(1, 1, 1, 1),
             num_heads=(1, 1, 2, 2))


def _loss_and_grad(remat: bool, params=None):
  module = models.build(dict(SMALL, remat=remat))
  params = models.init_params(module, 0) if params is None else params
  x = jnp.abs(jax.random.normal(jax.random.key(0), (2, 32, 32, 3)))
  loss = lambda p: jnp.mean((module.apply({"params": p}, x)["reconstruction"] - x) ** 2)
  return params, jax.jit(jax.value_and_grad(loss))(params), jax.make_jaxpr(jax.grad(loss))(params)


def test_remat_keeps_parameters_and_gradients():
  params, (loss, grads), jaxpr = _loss_and_grad(False)
  _, (loss_r, grads_r), jaxpr_r = _loss_and_grad(True, params)
  remat_tree = models.abstract_params(models.build(dict(SMALL, remat=True)))
  assert jax.tree.structure(remat_tree) == jax.tree.structure(params)
  np.testing.assert_allclose(loss_r, loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads_r), jax.tree.leaves(grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
  assert "remat" in str(jaxpr_r) or "checkpoint" in str(jaxpr_r)
  assert "remat" not in str(jaxpr) and "checkpoint" not in str(jaxpr)
