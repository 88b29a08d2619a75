"""Embeddings derived from the bottleneck tokens (B, N, C).

* `mean`: the mean over all N tokens, (B, C); lvm-jax's default (768-d for the 100M models).
* `authors`: the layout of the paper's released features: the (C, N) bottleneck average-pooled
  over groups of 4 consecutive tokens, (C, N/4), flattened channel-major, first C numbers kept,
  i.e. channels 0..C/4−1 at the N/4 token groups ((B, 768) = 192 channels x 4 groups at 128 px).
"""

from __future__ import annotations

import jax.numpy as jnp

EMBEDDINGS = ("mean", "authors")


def authors_embedding(bottleneck: jnp.ndarray) -> jnp.ndarray:
  """(B, N, C) -> (B, C): the released features' layout, described in the module docstring."""
  b, n, c = bottleneck.shape
  if n % 4:
    raise ValueError(f"the authors' layout pools groups of 4 tokens; got {n} tokens")
  pooled = bottleneck.reshape(b, n // 4, 4, c).mean(axis=2)  # (B, N/4, C)
  pooled = pooled.transpose(0, 2, 1).reshape(b, -1)  # channel-major (B, C·N/4)
  return pooled[:, :c]


def embed(bottleneck: jnp.ndarray, kind: str = "mean") -> jnp.ndarray:
  """The named embedding of bottleneck tokens (B, N, C)."""
  if kind == "mean":
    return bottleneck.mean(axis=1)
  if kind == "authors":
    return authors_embedding(bottleneck)
  raise ValueError(f"unknown embedding {kind!r}; known: {EMBEDDINGS}")
