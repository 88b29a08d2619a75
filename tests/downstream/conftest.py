"""Shared fixtures of the downstream-task tests: a shrunk LVM config and an optimizer config."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_lvm_config():
  """The tiny preset shrunk to 32 px, 16 channels, one block per stage."""
  from lvm_jax import models
  c = models.preset("tiny")
  c.img_size, c.embed_dim, c.depths, c.num_heads, c.window_size = 32, 16, [1, 1, 1, 1], \
      [1, 1, 2, 2], 4
  return c


@pytest.fixture(scope="session")
def opt_config():
  import ml_collections
  return ml_collections.ConfigDict(dict(
      name="adamw", lr=3e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, warmup_steps=0,
      schedule="constant", end_lr_factor=0.0, grad_clip=1.0))
