"""The heads' BatchNorm standardisation of the embedding, and the restoration flux term."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lvm_jax.downstream import heads


def _near_constant_embeddings(n=256, d=32, seed=0):
  """An embedding whose class signal is 1e-3 of its (shared) mean: what a collapsed encoder gives."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 4, n)
  base = 10.0 + rng.normal(size=d)
  signal = np.eye(4)[labels] @ rng.normal(size=(4, d))
  return (base + 1e-3 * signal).astype(np.float32), labels


def test_classifier_learns_from_a_near_constant_embedding():
  x, y = _near_constant_embeddings()
  head = heads.ClassifierHead(num_classes=4, hidden=32)
  variables = head.init(jax.random.key(0), {"embedding": x}, None, train=False)
  params, stats = variables["params"], variables.get("batch_stats", {})
  tx = optax.adam(1e-2)
  opt = tx.init(params)

  @jax.jit
  def step(params, stats, opt):
    def loss(p):
      logits, new = head.apply({"params": p, "batch_stats": stats}, {"embedding": x}, None,
                               train=True, mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new
    (l, new), g = jax.value_and_grad(loss, has_aux=True)(params)
    up, opt = tx.update(g, opt)
    return optax.apply_updates(params, up), new.get("batch_stats", {}), opt, l

  for _ in range(100):
    params, stats, opt, _ = step(params, stats, opt)
  logits = head.apply({"params": params, "batch_stats": stats}, {"embedding": x}, None, train=False)
  assert np.mean(np.argmax(logits, 1) == y) > 0.95


def test_evaluation_uses_running_statistics():
  x, _ = _near_constant_embeddings(n=64)
  head = heads.GaussianHead(num_outputs=2, hidden=16)
  variables = head.init(jax.random.key(1), {"embedding": x}, None, train=False)
  _, new = head.apply(variables, {"embedding": x}, None, train=True, mutable=["batch_stats"])
  mean = new["batch_stats"]["norm"]["mean"]
  np.testing.assert_allclose(mean, 0.1 * x.mean(0), rtol=1e-5)  # momentum 0.9 from zero
  variables = {**variables, **new}
  one = head.apply(variables, {"embedding": x[:1]}, None, train=False)
  many = head.apply(variables, {"embedding": x}, None, train=False)
  # at evaluation a galaxy's output does not depend on the rest of its batch
  np.testing.assert_allclose(one["mean"], many["mean"][:1], rtol=1e-5, atol=1e-6)
  assert jnp.all(jnp.isfinite(many["log_sigma"]))


def test_aperture_flux_matches_the_metric_in_nanomaggies():
  from lvm_jax.data import preprocess
  from lvm_jax.downstream import definitions, metrics
  rng = np.random.default_rng(3)
  soft = (0.02, 0.03, 0.08)
  flux = rng.normal(0.0, 0.05, (2, 32, 32, 3)).astype(np.float32)
  flux[:, 12:20, 12:20] += 2.0
  stretched = np.stack([preprocess.asinh_stretch(f, soft) for f in flux])
  got = np.asarray(definitions.aperture_flux(jnp.asarray(stretched), 6.0, asinh=True))
  want = metrics.aperture_flux(flux, 6.0) / np.asarray(soft)  # softening units
  np.testing.assert_allclose(got, want, rtol=1e-4)


def test_flux_term_sees_a_small_asinh_offset_that_mse_barely_sees():
  from lvm_jax.downstream import definitions
  rng = np.random.default_rng(4)
  target = rng.normal(0.0, 0.1, (4, 32, 32, 3)).astype(np.float32)
  target[:, 14:18, 14:18] += 4.0  # a bright centre (asinh units)
  low = target.copy()
  low[:, 14:18, 14:18] -= 0.3  # exp(-0.3): 26 % of the flux
  mse = np.mean((low - target) ** 2)
  term = np.asarray(definitions.flux_term(jnp.asarray(low), jnp.asarray(target), 8.0, True))
  assert mse < 0.002
  np.testing.assert_allclose(term, (np.exp(-0.3) - 1) ** 2, rtol=0.1)
  same = definitions.flux_term(jnp.asarray(target), jnp.asarray(target), 8.0, True)
  np.testing.assert_allclose(same, 0.0, atol=1e-9)


def test_log_mse_restoration_loss_weighs_light_and_heavy_degradations_alike():
  """`pixel_loss="log_mse"`: per-image log MSE (+ the flux term), so halving the error of a
  lightly degraded image counts as much as halving that of a heavily degraded one."""
  from lvm_jax.downstream import definitions

  class Identity:  # a "network" whose head returns its input
    def apply(self, variables, images, head, train=False, rngs=None, mutable=False):
      out = jnp.asarray(images, jnp.float32)
      return (out, {}) if mutable else out

  rng = np.random.default_rng(5)
  image = rng.normal(0.0, 0.1, (2, 16, 16, 3)).astype(np.float32)
  noise = rng.normal(size=image.shape).astype(np.float32)
  degraded = image + noise * np.array([0.05, 0.5], np.float32)[:, None, None, None]
  batch = {"degraded": degraded, "image": image, "valid": np.ones(2, bool)}
  mse = np.mean((degraded - image) ** 2, axis=(1, 2, 3))
  for kind, want in (("mse", mse), ("log_mse", np.log(mse + 1e-6))):
    task = definitions.RestorationTask(image_size=16, pixel_loss=kind, flux_weight=0.0)
    got, _ = task.per_image_loss(Identity(), {}, batch, jax.random.key(0), False)
    np.testing.assert_allclose(got, want, rtol=1e-5)
  half = {**batch, "degraded": image + (degraded - image) / np.sqrt(2.0)}
  task = definitions.RestorationTask(image_size=16, pixel_loss="log_mse")
  gain = (task.per_image_loss(Identity(), {}, batch, jax.random.key(0), False)[0]
          - task.per_image_loss(Identity(), {}, half, jax.random.key(0), False)[0])
  np.testing.assert_allclose(gain, np.log(2.0), rtol=1e-3)  # the same for both images
  bad = definitions.RestorationTask(image_size=16, pixel_loss="l1")
  with pytest.raises(ValueError, match="log_mse"):
    bad.per_image_loss(Identity(), {}, batch, jax.random.key(0), False)
  # inpainting: the log of (masked-pixel MSE + whole_weight x image MSE) of each image
  mask = np.zeros((2, 16, 16), bool)
  mask[:, :8] = True
  inp = {"image": image, "mask": mask, "valid": np.ones(2, bool)}
  sq = np.where(mask[..., None], image ** 2, 0.0)  # the zero-filled input's error
  want = sq[mask].reshape(2, -1).mean(1) + 0.1 * sq.reshape(2, -1).mean(1)
  for kind, w in (("mse", want), ("log_mse", np.log(want + 1e-6))):
    task = definitions.InpaintingTask(image_size=16, pixel_loss=kind, whole_weight=0.1)
    np.testing.assert_allclose(task.per_image_loss(Identity(), {}, inp, jax.random.key(0),
                                                   False)[0], w, rtol=1e-5)


def test_fill_masked_is_normalised_convolution_of_the_visible_pixels():
  """The inpainting input (`tasks.inpainting_fill_sigmas_px`), against scipy's Gaussian filter."""
  from scipy import ndimage

  from lvm_jax.downstream import definitions
  rng = np.random.default_rng(0)
  images = rng.normal(size=(2, 24, 24, 3)).astype(np.float32)
  mask = np.zeros((2, 24, 24), bool)
  mask[0, 4:12, 4:12] = True
  mask[1, :, 10:] = True  # a hole 14 px wide: its far side needs the wider Gaussian
  zero = np.asarray(definitions.fill_masked(images, mask))
  np.testing.assert_array_equal(zero, np.where(mask[..., None], 0.0, images))
  out = np.asarray(definitions.fill_masked(images, mask, (2.0, 6.0)))
  np.testing.assert_array_equal(out[~mask], images[~mask])  # visible pixels are kept
  for i in range(2):
    vis = (~mask[i]).astype(np.float64)
    blur = lambda a, s: ndimage.gaussian_filter(a, s, mode="constant", truncate=3.0)  # noqa: E731
    w2, w6 = blur(vis, 2.0), blur(vis, 6.0)
    for b in range(3):
      v2 = blur(images[i, :, :, b] * vis, 2.0) / np.maximum(w2, 1e-3)
      v6 = blur(images[i, :, :, b] * vis, 6.0) / np.maximum(w6, 1e-3)
      expected = np.where(w2 > 1e-3, v2, np.where(w6 > 1e-3, v6, 0.0))
      np.testing.assert_allclose(out[i, :, :, b][mask[i]], expected[mask[i]], rtol=1e-3,
                                 atol=1e-4)
  assert np.all(out[1, :, -1][..., None] != 0.0)  # reached by the 6 px Gaussian only
  flat = np.full((1, 16, 16, 3), 0.7, np.float32)  # a constant image is filled exactly
  hole = np.zeros((1, 16, 16), bool)
  hole[0, 5:9, 5:9] = True
  np.testing.assert_allclose(definitions.fill_masked(flat, hole, (2.0,)), flat, rtol=1e-5)


def test_inpainting_mask_channel_reaches_the_head_and_not_the_backbone(small_lvm_config):
  """`mask_channel`: the input is [fill, mask]; the backbone sees g, r, z only, the head all four."""
  from lvm_jax.downstream import definitions, network
  rng = np.random.default_rng(1)
  images = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)
  mask = np.zeros((2, 32, 32), bool)
  mask[:, 8:16, 8:16] = True
  task = definitions.InpaintingTask(image_size=32, decoder_width=8, mask_channel=True,
                                    fill_sigmas_px=(2.0,))
  x = np.asarray(task.masked_input(images, mask))
  assert x.shape == (2, 32, 32, 4)
  np.testing.assert_array_equal(x[..., 3], mask.astype(np.float32))
  np.testing.assert_array_equal(x[..., :3], definitions.fill_masked(images, mask, (2.0,)))
  net = network.Network(network.make_backbone("lvm", small_lvm_config), {task.name: task.head()})
  variables = task.init_variables(net, 0)
  flipped = x.copy()
  flipped[..., 3] = 1.0 - flipped[..., 3]
  feats = [net.apply(variables, a, method=network.Network.features)["embedding"]
           for a in (x, flipped)]
  np.testing.assert_array_equal(feats[0], feats[1])
  # a nonzero output layer: the mask plane now changes the prediction
  params = jax.tree_util.tree_map_with_path(
      lambda p, a: a + 0.1 if "out" in jax.tree_util.keystr(p) else a, variables["params"])
  outs = [net.apply({**variables, "params": params}, a, task.name) for a in (x, flipped)]
  assert outs[0].shape == (2, 32, 32, 3)
  assert not np.allclose(outs[0], outs[1])
  with pytest.raises(ValueError, match="4 input channels got 3"):
    net.apply(variables, x[..., :3], task.name)
