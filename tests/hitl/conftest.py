"""Small catalogues for the HITL tests: a rare positive cluster among negatives."""

from __future__ import annotations

import numpy as np
import pytest

# A small, quick model: same code paths as the paper's 2048 units.
SMALL = dict(hidden=64, fast_dims=16, steps=30)


def make_catalogue(n: int = 600, dim: int = 32, seed: int = 0):
  """(n, dim) embeddings, (n,) bool truth with ~8% positives, (n,) ra, dec."""
  rng = np.random.default_rng(seed)
  truth = rng.random(n) < 0.08
  x = rng.normal(0.0, 1.0, (n, dim)).astype(np.float32)
  x[truth, :4] += 2.5
  ra = rng.uniform(0, 360, n)
  dec = rng.uniform(-30, 30, n)
  return x, truth, ra, dec


@pytest.fixture
def catalogue():
  return make_catalogue()


@pytest.fixture(name="make_catalogue")
def make_catalogue_fixture():
  return make_catalogue


@pytest.fixture(name="small")
def small_fixture():
  """Keyword arguments of a small Session model."""
  return dict(SMALL)
