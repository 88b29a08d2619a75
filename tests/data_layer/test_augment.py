"""Dihedral group, crop jitter and rotations, all driven by an explicit Generator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lvm_jax.data import augment


@pytest.fixture
def asymmetric():
  return np.arange(5 * 5 * 2, dtype=np.float32).reshape(5, 5, 2)


def test_eight_distinct_transforms(asymmetric):
  outs = [augment.dihedral(asymmetric, k) for k in range(8)]
  assert len({o.tobytes() for o in outs}) == 8
  np.testing.assert_array_equal(outs[0], asymmetric)
  np.testing.assert_array_equal(outs[1], np.rot90(asymmetric))
  np.testing.assert_array_equal(outs[4], asymmetric[:, ::-1])


def test_group_closure_and_inverse(asymmetric):
  for k1, k2 in itertools.product(range(8), range(8)):
    twice = augment.dihedral(augment.dihedral(asymmetric, k1), k2)
    np.testing.assert_array_equal(twice, augment.dihedral(asymmetric, augment.dihedral_compose(k1, k2)))
  for k in range(8):
    back = augment.dihedral(augment.dihedral(asymmetric, k), augment.dihedral_inverse(k))
    np.testing.assert_array_equal(back, asymmetric)
  with pytest.raises(ValueError, match="0..7"):
    augment.dihedral(asymmetric, 8)


def test_non_square_shapes():
  image = np.zeros((4, 6, 3))
  assert augment.dihedral(image, 1).shape == (6, 4, 3)
  assert augment.dihedral(image, 6).shape == (4, 6, 3)


def test_random_dihedral_reproducible(asymmetric):
  a = [augment.random_dihedral(asymmetric, np.random.default_rng(3))[1] for _ in range(2)]
  assert a[0] == a[1]
  ks = {augment.random_dihedral(asymmetric, r)[1] for r in [np.random.default_rng(0)] for _ in range(200)}
  assert ks == set(range(8))
  with pytest.raises(TypeError, match="Generator"):
    augment.random_dihedral(asymmetric, 0)


def test_jitter_crop():
  image = np.arange(20 * 20, dtype=np.float32).reshape(20, 20, 1)
  rng = np.random.default_rng(0)
  offsets = set()
  for _ in range(100):
    crop, (x0, y0, x1, y1) = augment.jitter_crop(image, 10, rng, max_offset=2)
    assert crop.shape == (10, 10, 1) and x1 - x0 == 10 and y1 - y0 == 10
    np.testing.assert_array_equal(crop, image[y0:y1, x0:x1])
    assert 3 <= x0 <= 7 and 3 <= y0 <= 7
    offsets.add((x0, y0))
  assert len(offsets) > 10
  _, box = augment.jitter_crop(image, 10, rng, max_offset=0)
  assert box == (5, 5, 15, 15)
  for _ in range(50):  # unbounded jitter stays inside the image
    _, (x0, y0, x1, y1) = augment.jitter_crop(image, 18, rng)
    assert 0 <= x0 and x1 <= 20 and 0 <= y0 and y1 <= 20


def test_rotation():
  image = np.zeros((21, 21, 2), np.float32)
  image[4, 10] = 1.0  # above the centre
  quarter = augment.rotate(image, 90.0)
  np.testing.assert_allclose(quarter, np.rot90(image), atol=1e-6)
  out, angle = augment.random_rotation(image, np.random.default_rng(1), max_angle_deg=30)
  assert -30 <= angle <= 30 and out.shape == image.shape and out.dtype == np.float32
  assert out.sum() == pytest.approx(2.0, rel=0.05)
