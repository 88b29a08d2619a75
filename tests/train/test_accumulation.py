"""Gradient accumulation (scan over microbatches) and remat leave the update unchanged."""

import jax
import numpy as np
import pytest

from lvm_jax import models
from lvm_jax.train import optimizer, sharding, step as step_lib, objectives


@pytest.mark.slow
def test_two_microbatches_with_remat_equal_one_batch(make_config):
  # No input masking (its draws differ per microbatch) and no descriptor term (its targets are
  # standardised over each microbatch, as BatchNorm would be); 3 padding rows weigh nothing.
  c = make_config("task.mask_fraction=0.0", "task.descriptor_weight=0.0")
  mesh = sharding.make_mesh(c.mesh.shape, c.mesh.axes)
  model, task = models.build(c.model), objectives.make_task(c.task)
  abstract = models.abstract_params(model)
  psh = sharding.tree_shardings(abstract, mesh, c.sharding)
  tx, schedule = optimizer.make_optimizer(c.optimizer, c.num_steps)
  osh = sharding.tree_shardings(jax.eval_shape(tx.init, abstract), mesh, c.sharding)
  bsh = sharding.batch_sharding(mesh, c.sharding)
  b, s = 16, c.model.img_size
  rng = np.random.default_rng(0)
  batch = {"image": jax.device_put(rng.standard_normal((b, s, s, 3)).astype(np.float32), bsh),
           "valid": jax.device_put(np.arange(b) < b - 3, bsh)}
  abstract_batch = step_lib.abstract_like(batch)
  results = []
  for accum, remat in ((1, "none"), (2, "dots")):
    params = task.init_variables(model, 0, psh)["params"]
    state = step_lib.create_state(params, tx, psh, osh, mesh, ema=True)
    fn = step_lib.make_train_step(model, task, tx, schedule, seed=0, grad_accum=accum,
                                  remat=remat, ema_decay=0.9, batch_sharding=bsh)
    compiled = step_lib.compile_train_step(fn, state, abstract_batch, mesh)
    state, metrics = compiled(state, batch)
    state, metrics = compiled(state, batch)
    results.append(jax.device_get((metrics, state["params"], state["ema_params"])))
  (m1, p1, e1), (m2, p2, e2) = results
  assert m1["count"] == m2["count"] == 13
  np.testing.assert_allclose(m2["loss"], m1["loss"], rtol=1e-5)
  np.testing.assert_allclose(m2["grad_norm"], m1["grad_norm"], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), p1, p2)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), e1, e2)
