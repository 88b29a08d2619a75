"""The SUNet module: outputs, encoder path, presets, parameter counts, train-mode randomness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lvm_jax import models


def _images(batch=2, size=64, seed=0):
  return jnp.abs(jax.random.normal(jax.random.key(seed), (batch, size, size, 3)))


def test_outputs_and_encoder_path(tiny):
  _, module, params = tiny
  x = _images()
  out = jax.jit(lambda p, x: module.apply({"params": p}, x))(params, x)
  c = 8 * 32
  assert out["reconstruction"].shape == (2, 64, 64, 3)
  assert out["bottleneck"].shape == (2, 4, c)  # (64/4/8)² = 4 tokens
  assert out["embedding"].shape == (2, c)
  np.testing.assert_allclose(out["embedding"], out["bottleneck"].mean(1), rtol=1e-6, atol=1e-6)
  enc = jax.jit(lambda p, x: module.apply({"params": p}, x, method="encode"))(params, x)
  assert "reconstruction" not in enc
  np.testing.assert_allclose(enc["bottleneck"], out["bottleneck"], rtol=1e-5, atol=1e-5)
  assert [f.shape[1] for f in enc["features"]] == [16, 8, 4, 2, 2]
  # The bottleneck is LayerNorm-ed: zero mean and unit variance per token before the affine.
  assert np.isfinite(np.asarray(out["reconstruction"])).all()


def test_batch_independence(tiny):
  _, module, params = tiny
  x = _images(batch=3)
  apply = jax.jit(lambda p, x: module.apply({"params": p}, x)["reconstruction"])
  full, one = apply(params, x), apply(params, x[1:2])
  np.testing.assert_allclose(full[1:2], one, rtol=1e-4, atol=1e-5)


def test_skip_keep_scales_the_skips_per_image(tiny):
  _, module, params = tiny
  x = _images(batch=2)
  enc = jax.jit(lambda p, x: module.apply({"params": p}, x, method="encode"))(params, x)
  apply = jax.jit(lambda p, x, k: module.apply({"params": p}, x, skip_keep=k)["reconstruction"])
  decode = jax.jit(lambda p, f: module.apply({"params": p}, f, method="decode"))
  keep = apply(params, x, jnp.ones(2))
  plain = jax.jit(lambda p, x: module.apply({"params": p}, x)["reconstruction"])(params, x)
  np.testing.assert_allclose(keep, plain, rtol=1e-5, atol=1e-6)
  mixed = apply(params, x, jnp.array([1.0, 0.0]))
  zero_skips = [jnp.zeros_like(f) for f in enc["features"][:-1]] + [enc["features"][-1]]
  np.testing.assert_allclose(mixed[1], decode(params, zero_skips)[1], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(mixed[0], keep[0], rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(mixed[1] - keep[1]))) > 1e-3


def test_dropout_and_drop_path_only_in_training(tiny):
  config, _, params = tiny
  config = config.copy_and_resolve_references()
  config.drop_path_rate = 0.5
  config.drop_rate = 0.1
  module = models.build(config)
  x = _images()
  apply = jax.jit(lambda p, x, key, train: module.apply(
      {"params": p}, x, train=train, rngs={"dropout": key})["reconstruction"], static_argnums=3)
  run = lambda train, seed: apply(params, x, jax.random.key(seed), train)
  np.testing.assert_array_equal(run(False, 0), run(False, 1))
  assert not np.allclose(run(True, 0), run(True, 1))
  np.testing.assert_array_equal(run(True, 3), run(True, 3))
  # Step-folded RNGs: different steps draw differently, the same step reproduces.
  key = jax.random.key(7)
  by_step = lambda step: apply(params, x, models.step_rngs(key, step)["dropout"], True)
  assert not np.allclose(by_step(1), by_step(2))
  np.testing.assert_array_equal(by_step(5), by_step(5))


@pytest.mark.parametrize("name,expected", [("sunet_100m", 99_672_457),
                                           ("lvm_100m", 100_460_721 - 790_565)])
def test_100m_parameter_counts(name, expected):
  # lvm_100m: the published 100,460,721 less the forward-unused output_class/output_re heads.
  module = models.build(models.preset(name))
  abstract = models.abstract_params(module)
  assert models.count_params(abstract) == expected


def test_100m_bottleneck_shape():
  module = models.build(models.preset("lvm_100m"))
  x = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
  abstract = models.abstract_params(module)
  out = jax.eval_shape(lambda p, x: module.apply({"params": p}, x), abstract, x)
  assert out["bottleneck"].shape == (2, 16, 768)
  assert out["embedding"].shape == (2, 768)
  assert out["reconstruction"].shape == (2, 128, 128, 3)


def test_presets_carry_the_issue_fields():
  fields = {"img_size", "patch_size", "in_chans", "out_chans", "embed_dim", "depths", "num_heads",
            "window_size", "mlp_ratio", "qkv_bias", "qk_scale", "drop_path_rate", "head", "dtype"}
  for name in ("lvm_100m", "sunet_100m", "tiny"):
    assert fields <= set(models.preset(name).keys())
  assert models.preset("lvm_100m").head == "lvm" and models.preset("sunet_100m").head == "sunet"
  assert models.preset("lvm_100m").qk_scale == 8
  with pytest.raises(ValueError, match="unknown model preset"):
    models.preset("huge")
  with pytest.raises(ValueError, match="unknown model config fields"):
    models.build(dict(models.preset("tiny").to_dict(), colour="red"))


def test_authors_embedding_layout():
  b = np.arange(2 * 16 * 768, dtype=np.float32).reshape(2, 16, 768)
  e = np.asarray(models.authors_embedding(jnp.asarray(b)))
  assert e.shape == (2, 768)
  pooled = b.reshape(2, 4, 4, 768).mean(2)  # (B, 4 groups, C)
  # Channel-major flattening: element k = channel k // 4 at group k % 4.
  for k in (0, 1, 5, 767):
    assert e[1, k] == pooled[1, k % 4, k // 4]
