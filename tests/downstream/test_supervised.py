"""The from-scratch classifier of the experiments learns a task a network must get right."""

from __future__ import annotations

import numpy as np

from lvm_jax.downstream import supervised


def test_fit_classifier_separates_two_easy_classes():
  rng = np.random.default_rng(0)
  y = np.repeat([0, 1], 40)
  x = rng.normal(0.0, 0.3, (80, 16, 16, 3)).astype(np.float32)
  x[y == 1, 4:12, 4:12, :] += 2.0  # class 1: a bright centre
  order = rng.permutation(80)
  x, y = x[order], y[order]
  recipe = supervised.Recipe(width=4, steps=40, batch=16, lr=3e-3)
  probs = supervised.fit_classifier(x[:60], y[:60], x[60:], 2, seed=0, recipe=recipe)
  assert probs.shape == (20, 2)
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
  assert (probs.argmax(1) == y[60:]).mean() >= 0.9
