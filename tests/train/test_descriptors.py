"""Pretraining's descriptor term: the descriptors, their batch standardisation, the head, the loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from lvm_jax import models
from lvm_jax.data import augment
from lvm_jax.train import descriptors, tasks


def _numpy_descriptors(image, annuli, width, eps=0.05):
  """One stamp (S, S, C), written out pixel by pixel: the docstring's definition."""
  size, _, bands = image.shape
  centre = (size - 1) / 2
  sums = np.zeros((annuli, bands))
  counts = np.zeros(annuli)
  for y in range(size):
    for x in range(size):
      ring = min(int(np.hypot(y - centre, x - centre) / width), annuli - 1)
      sums[ring] += image[y, x]
      counts[ring] += 1
  profile = sums / counts[:, None]
  total = profile.sum(0)
  summed = profile.sum(1)
  return np.concatenate([total[:-1] - total[1:], summed[1:] / (abs(summed[0]) + eps)])


def test_descriptors_match_a_pixel_loop_and_ignore_flips_and_rotations():
  rng = np.random.default_rng(0)
  images = rng.normal(size=(3, 20, 20, 3)).astype(np.float32)
  got = np.asarray(descriptors.photometric_descriptors(jnp.asarray(images), annuli=4,
                                                       width_px=2.5))
  assert got.shape == (3, descriptors.count(3, 4)) == (3, 5)
  for i in range(3):
    np.testing.assert_allclose(got[i], _numpy_descriptors(images[i], 4, 2.5), rtol=1e-4,
                               atol=1e-5)
  turned = np.stack([augment.dihedral(im, k) for im, k in zip(images, (3, 5, 6))])
  np.testing.assert_allclose(
      np.asarray(descriptors.photometric_descriptors(jnp.asarray(turned), 4, 2.5)), got,
      rtol=1e-4, atol=1e-5)


def test_descriptors_see_colour():
  flat = np.ones((1, 16, 16, 3), np.float32) * np.array([1.0, 2.0, 4.0], np.float32)
  d = np.asarray(descriptors.photometric_descriptors(jnp.asarray(flat), annuli=5))
  np.testing.assert_allclose(d[0, :2], [5 * (1 - 2), 5 * (2 - 4)], rtol=1e-5)  # g-r, r-z
  np.testing.assert_allclose(d[0, 2:], 7 / 7.05, rtol=1e-5)  # a flat profile
  with pytest.raises(ValueError, match="square stamps"):
    descriptors.photometric_descriptors(jnp.zeros((1, 8, 9, 3)))


def test_standardise_ignores_padding_rows_and_clips():
  t = jnp.asarray([[1.0], [3.0], [1e6], [2.0]])
  z = np.asarray(descriptors.standardise(t, jnp.asarray([1.0, 1.0, 0.0, 1.0])))
  valid = z[[0, 1, 3], 0]
  np.testing.assert_allclose(valid, [-np.sqrt(1.5), np.sqrt(1.5), 0.0], rtol=1e-5)
  assert z[2, 0] == descriptors.STANDARD_CLIP  # the padding row is clipped, not used


def test_descriptor_head_is_optional_and_the_loss_adds_its_term(tiny):
  config, module, params = tiny
  assert "descriptor_head" not in params  # published models keep the original parameters
  cfg = models.preset("tiny")
  cfg.descriptor_outputs = descriptors.count(3, 10)
  cfg.img_size = 32  # small and jitted: this test is about the loss, not the network
  with_head = models.build(cfg)
  p = models.init_params(with_head, 0)
  assert set(p) - set(params) == {"descriptor_head"}
  x = jax.random.normal(jax.random.key(3), (4, 32, 32, 3))
  batch = {"image": x, "valid": np.ones(4, bool)}
  rng = jax.random.key(0)
  out = jax.jit(with_head.apply)({"params": p}, x)
  assert out["descriptors"].shape == (4, 11)
  task = tasks.ReconstructionTask(descriptor_weight=2.0)
  loss, (metrics, _) = jax.jit(lambda q: task.loss_fn(with_head, {"params": q}, batch, rng))(p)
  target = descriptors.standardise(descriptors.photometric_descriptors(x), jnp.ones(4))
  expected_desc = float(jnp.mean(jnp.square(out["descriptors"] - target)))
  recon = float(jnp.mean(jnp.square(out["reconstruction"] - x)))
  np.testing.assert_allclose(float(metrics["descriptor_loss"]) / 4, expected_desc, rtol=1e-4)
  np.testing.assert_allclose(float(loss), recon + 2.0 * expected_desc, rtol=1e-4)
  # The descriptor term trains the encoder: its gradient reaches the first stage.
  grads = jax.jit(jax.grad(lambda q: jnp.sum(task.descriptor_loss(
      with_head.apply({"params": q}, x, method=lambda m, im: {
          "descriptors": m.descriptor_head(m.encode(im)["embedding"])}), x, jnp.ones(4)))))(p)
  flat = traverse_util.flatten_dict(grads)
  assert float(jnp.abs(flat[("layers_0", "blocks_0", "attn", "qkv", "kernel")]).max()) > 0
  with pytest.raises(ValueError, match="descriptor_outputs = 11"):
    task.loss_fn(module, {"params": params}, {"image": jnp.zeros((1, 64, 64, 3)),
                                              "valid": np.ones(1, bool)}, rng)
