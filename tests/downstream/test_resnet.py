"""ResNet18/50 backbones: feature shapes and strides, BatchNorm state, a real gradient step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lvm_jax.models import resnet


@pytest.mark.parametrize("make,mult", [(resnet.resnet18, 1), (resnet.resnet50, 4)])
def test_features_at_strides_4_to_32(make, mult):
  model = make(width=8)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 3)), jnp.float32)
  variables = jax.jit(lambda x: model.init(jax.random.key(0), x))(x)
  assert set(variables) == {"params", "batch_stats"}
  out = jax.jit(lambda v, x: model.apply(v, x))(variables, x)
  shapes = [f.shape for f in out["features"]]
  assert shapes == [(2, 16, 16, 8 * mult), (2, 8, 8, 16 * mult), (2, 4, 4, 32 * mult),
                    (2, 2, 2, 64 * mult)]
  assert out["embedding"].shape == (2, 64 * mult)
  np.testing.assert_allclose(out["embedding"], out["features"][-1].mean(axis=(1, 2)), rtol=1e-5,
                             atol=1e-6)


def test_resnet18_parameter_count_matches_torchvision():
  # torchvision resnet18 without its fc layer: 11,689,512 - (512 * 1000 + 1000) = 11,176,512.
  model = resnet.resnet18()
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
  n = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes["params"]))
  assert n == 11_176_512


def test_train_step_updates_batch_stats_and_lowers_loss():
  model = resnet.resnet18(width=8)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(8, 32, 32, 3)) + 2.0, jnp.float32)
  target = jnp.asarray(rng.normal(size=(8, 64)), jnp.float32)
  variables = model.init(jax.random.key(0), x)
  tx = optax.adam(1e-2)
  opt = tx.init(variables["params"])

  @jax.jit
  def step(params, stats, opt):
    def loss_fn(p):
      out, new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                             mutable=["batch_stats"])
      return jnp.mean((out["embedding"] - target) ** 2), new["batch_stats"]
    (loss, new_stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), new_stats, opt, loss

  params, stats = variables["params"], variables["batch_stats"]
  losses = []
  for _ in range(5):
    params, new_stats, opt, loss = step(params, stats, opt)
    losses.append(float(loss))
  # Running means moved towards the (shifted) input statistics.
  assert not np.allclose(new_stats["bn_stem"]["mean"], stats["bn_stem"]["mean"])
  assert losses[-1] < losses[0]
  # Inference uses the running statistics: output independent of the other batch members.
  out_all = model.apply({"params": params, "batch_stats": new_stats}, x)["embedding"]
  out_one = model.apply({"params": params, "batch_stats": new_stats}, x[:1])["embedding"]
  np.testing.assert_allclose(out_all[:1], out_one, rtol=1e-4, atol=1e-5)


def test_rejects_non_nhwc():
  with pytest.raises(ValueError, match="NHWC"):
    resnet.resnet18(width=8).init(jax.random.key(0), jnp.zeros((32, 32, 3)))
