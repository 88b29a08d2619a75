"""Pretraining's descriptor term: the descriptors, their batch standardisation, the head, the loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from lvm_jax import models
from lvm_jax.data import augment
from lvm_jax.train import descriptors, objectives


def _numpy_descriptors(image, annuli, width, eps=0.05, orders=(), edges=()):
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
  out = [total[:-1] - total[1:], summed[1:] / (abs(summed[0]) + eps)]
  light = image.sum(-1)
  for m in orders:
    for lo, hi in zip(edges[:-1], edges[1:]):
      wave, level, n = 0j, 0.0, 0
      for y in range(size):
        for x in range(size):
          r = np.hypot(y - centre, x - centre)
          if lo <= r < hi:
            wave += light[y, x] * np.exp(1j * m * np.arctan2(y - centre, x - centre))
            level += abs(light[y, x])
            n += 1
      out.append([abs(wave / n) / (level / n + eps)])
  return np.concatenate(out)


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


def test_azimuthal_amplitudes_match_a_pixel_loop_and_see_elongation():
  rng = np.random.default_rng(1)
  images = rng.normal(size=(2, 20, 20, 3)).astype(np.float32)
  kw = dict(annuli=4, width_px=2.5, orders=(1, 2), ring_edges_px=(1.0, 4.0, 9.0))
  got = np.asarray(descriptors.photometric_descriptors(jnp.asarray(images), **kw))
  assert got.shape == (2, descriptors.count(3, 4, (1, 2), 2)) == (2, 9)
  for i in range(2):
    np.testing.assert_allclose(got[i], _numpy_descriptors(images[i], 4, 2.5, orders=(1, 2),
                                                          edges=(1.0, 4.0, 9.0)),
                               rtol=1e-4, atol=1e-5)
  turned = np.stack([augment.dihedral(im, k) for im, k in zip(images, (1, 6))])
  np.testing.assert_allclose(
      np.asarray(descriptors.photometric_descriptors(jnp.asarray(turned), **kw)), got,
      rtol=1e-4, atol=1e-5)
  # A round Gaussian has no m = 2 structure; a 3:1 elongated one has, in every ring.
  yy, xx = np.mgrid[:32, :32] - 15.5
  round_, long_ = (np.exp(-(xx**2 + (yy / q) ** 2) / 100.0) for q in (1.0, 1 / 3))
  stamps = np.stack([round_, long_])[..., None].repeat(3, -1).astype(np.float32)
  d = np.asarray(descriptors.photometric_descriptors(jnp.asarray(stamps), orders=(2,)))
  assert d.shape == (2, 11 + 3)
  assert np.all(d[0, 11:] < 1e-3) and np.all(d[1, 11:] > 0.1)
  with pytest.raises(ValueError, match="increasing"):
    descriptors.photometric_descriptors(jnp.asarray(stamps), orders=(2,), ring_edges_px=(4, 2))
  with pytest.raises(ValueError, match="empty"):
    descriptors.photometric_descriptors(jnp.asarray(stamps), orders=(2,), ring_edges_px=(30, 40))


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
  cfg.img_size, cfg.depths = 32, [1, 1, 1, 1]  # small and jitted: about the loss, not the network
  with_head = models.build(cfg)
  p = models.init_params(with_head, 0)
  assert set(p) - set(params) == {"descriptor_head"}
  x = jax.random.normal(jax.random.key(3), (4, 32, 32, 3))
  batch = {"image": x, "valid": np.ones(4, bool)}
  rng = jax.random.key(0)
  out = jax.jit(with_head.apply)({"params": p}, x)
  assert out["descriptors"].shape == (4, 11)
  task = objectives.ReconstructionTask(descriptor_weight=2.0)
  loss, (metrics, _) = jax.jit(lambda q: task.loss_fn(with_head, {"params": q}, batch, rng))(p)
  target = descriptors.standardise(descriptors.photometric_descriptors(x), jnp.ones(4))
  expected_desc = float(jnp.mean(jnp.square(out["descriptors"] - target)))
  recon = float(jnp.mean(jnp.square(out["reconstruction"] - x)))
  np.testing.assert_allclose(float(metrics["descriptor_loss"]) / 4, expected_desc, rtol=1e-4)
  np.testing.assert_allclose(float(loss), recon + 2.0 * expected_desc, rtol=1e-4)
  # The descriptor term trains the encoder: its gradient reaches the first stage.
  grads = jax.jit(jax.grad(lambda q: jnp.sum(task.descriptor_loss(
      with_head.apply({"params": q}, x, method="describe"), x, jnp.ones(4)))))(p)
  flat = traverse_util.flatten_dict(grads)
  assert float(jnp.abs(flat[("layers_0", "blocks_0", "attn", "qkv", "kernel")]).max()) > 0
  with pytest.raises(ValueError, match="descriptor_outputs = 11"):
    task.loss_fn(module, {"params": params}, {"image": jnp.zeros((1, 64, 64, 3)),
                                              "valid": np.ones(1, bool)}, rng)


def test_clean_descriptor_input_trains_the_head_on_the_unmasked_images():
  cfg = models.preset("tiny")
  cfg.descriptor_outputs = descriptors.count(3, 10, (1, 2), 3)
  cfg.img_size, cfg.depths = 32, [1, 1, 1, 1]
  model = models.build(cfg)
  p = models.init_params(model, 0)
  x = jax.random.normal(jax.random.key(4), (4, 32, 32, 3))
  batch = {"image": x, "valid": np.ones(4, bool)}
  rng = jax.random.key(1)
  common = dict(mask_fraction=0.5, descriptor_weight=2.0, descriptor_orders=(1, 2))
  clean = objectives.ReconstructionTask(descriptor_input="clean", **common)
  loss, (metrics, _) = jax.jit(lambda q: clean.loss_fn(model, {"params": q}, batch, rng))(p)
  masked, mask = clean.degrade(x, jax.random.split(rng, 3)[0])
  assert bool(mask.any())
  recon = float(jnp.mean(jnp.square(model.apply({"params": p}, masked)["reconstruction"] - x)))
  target = descriptors.standardise(descriptors.photometric_descriptors(x, orders=(1, 2)),
                                   jnp.ones(4))
  predicted = model.apply({"params": p}, x, method="describe")
  assert predicted.shape == (4, 17)
  desc = float(jnp.mean(jnp.square(predicted - target)))
  np.testing.assert_allclose(float(metrics["reconstruction_loss"]) / 4, recon, rtol=1e-4)
  np.testing.assert_allclose(float(loss), recon + 2.0 * desc, rtol=1e-4)
  # The default ("degraded") predicts from the masked pass: a different term.
  degraded = objectives.ReconstructionTask(**common)
  _, (m2, _) = jax.jit(lambda q: degraded.loss_fn(model, {"params": q}, batch, rng))(p)
  assert abs(float(m2["descriptor_loss"]) - float(metrics["descriptor_loss"])) > 1e-3
  with pytest.raises(ValueError, match="descriptor_input"):
    objectives.ReconstructionTask(descriptor_input="noisy", **common).loss_fn(
        model, {"params": p}, batch, rng)
  cfg.descriptor_outputs = descriptors.count(3, 10)  # no room for the azimuthal amplitudes
  with pytest.raises(ValueError, match=r"azimuthal orders \[1, 2\]"):
    objectives.ReconstructionTask(descriptor_orders=(1, 2), descriptor_weight=1.0).loss_fn(
        models.build(cfg), {"params": p}, batch, rng)
