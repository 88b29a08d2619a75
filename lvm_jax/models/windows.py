"""Window operations of the Swin Transformer: pure functions and NumPy constants.

Images inside the network are token grids (B, H, W, C), row-major like the PyTorch tokens
(B, H*W, C). The relative-position index and the shifted-window mask are constants computed
once with NumPy for a given (resolution, window, shift); they are neither parameters nor
variable collections.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

MASK_VALUE = -100.0  # Logit offset between tokens of different shifted regions (the original's).


def effective_window(resolution: int, window_size: int, shift_size: int) -> tuple[int, int]:
  """The window clamp: a stage no larger than its window uses one window and no shift.

  Args:
    resolution: side of the (square) token grid at this stage.
    window_size, shift_size: as configured, in tokens.
  Returns:
    (window, shift) actually used.
  """
  if resolution <= window_size:
    return resolution, 0
  return window_size, shift_size


def window_partition(x: jnp.ndarray, window: int) -> jnp.ndarray:
  """(B, H, W, C) -> (B * nW, window * window, C), windows row-major, tokens row-major."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // window, window, w // window, window, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, window * window, c)


def window_reverse(windows: jnp.ndarray, window: int, h: int, w: int) -> jnp.ndarray:
  """Inverse of `window_partition`: (B * nW, window * window, C) -> (B, H, W, C)."""
  c = windows.shape[-1]
  x = windows.reshape(-1, h // window, w // window, window, window, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, h, w, c)


@functools.cache
def relative_position_index(window: int) -> np.ndarray:
  """(window², window²) int32 index into the ((2·window−1)², heads) bias table.

  For window positions i, j (row-major) with (dh, dw) = coords(i) − coords(j), the index is
  (dh + window − 1)·(2·window − 1) + (dw + window − 1).
  """
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij"))
  coords = coords.reshape(2, -1)
  rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
  index = rel[0] * (2 * window - 1) + rel[1]
  index.setflags(write=False)
  return index.astype(np.int32)


@functools.cache
def relative_position_onehot(window: int) -> np.ndarray:
  """(window⁴, (2·window−1)²) float32 one-hot rows of `relative_position_index`, flattened.

  `onehot @ table` equals `table[index.reshape(-1)]`, as a matmul.
  """
  index = relative_position_index(window).reshape(-1)
  onehot = np.zeros((index.size, (2 * window - 1) ** 2), np.float32)
  onehot[np.arange(index.size), index] = 1.0
  onehot.setflags(write=False)
  return onehot


@functools.cache
def shift_attention_mask(resolution: int, window: int, shift: int) -> np.ndarray | None:
  """(nW, window², window²) float32 mask for shifted windows (0 or −100), None without shift.

  The cyclically shifted grid is labelled in a 3x3 grid of regions with slices
  (0:−window), (−window:−shift), (−shift:) on each axis; token pairs from different regions
  get −100 added to their attention logit.
  """
  if shift == 0:
    return None
  labels = np.zeros((1, resolution, resolution, 1), np.float32)
  slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
  region = 0
  for hs in slices:
    for ws in slices:
      labels[:, hs, ws, :] = region
      region += 1
  windows = np.asarray(window_partition(labels, window))[..., 0]  # (nW, window²)
  diff = windows[:, None, :] - windows[:, :, None]
  mask = np.where(diff != 0, MASK_VALUE, 0.0).astype(np.float32)
  mask.setflags(write=False)
  return mask
