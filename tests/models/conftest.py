"""Session-scoped tiny models shared by the model tests."""

import jax
import numpy as np
import pytest

from lvm_jax import models


@pytest.fixture(scope="session")
def tiny():
  """(config, module, params) of the `tiny` preset with non-default, deterministic weights."""
  config = models.preset("tiny")
  module = models.build(config)
  params = models.init_params(module, jax.random.key(0))
  # Perturb every leaf (LayerNorm scales, biases too) so that layout mistakes show.
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda a: a + 0.02 * rng.standard_normal(a.shape, np.float32), params)
  return config, module, params
