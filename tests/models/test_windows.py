"""Window constants and pure window operations against brute-force definitions."""

import numpy as np
import pytest

from lvm_jax.models import windows


@pytest.mark.parametrize("w", [2, 4, 7])
def test_relative_position_index_matches_definition(w):
  index = windows.relative_position_index(w)
  assert index.shape == (w * w, w * w)
  for i in range(w * w):
    for j in range(w * w):
      dh, dw = i // w - j // w, i % w - j % w
      assert index[i, j] == (dh + w - 1) * (2 * w - 1) + (dw + w - 1)
  assert index.min() == 0 and index.max() == (2 * w - 1) ** 2 - 1


def test_partition_reverse_round_trip():
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
  wins = np.asarray(windows.window_partition(x, 4))
  assert wins.shape == (2 * 4, 16, 3)
  # Second window of the first image = rows 0-3, columns 4-7, row-major.
  np.testing.assert_array_equal(wins[1], x[0, 0:4, 4:8].reshape(16, 3))
  np.testing.assert_array_equal(np.asarray(windows.window_reverse(wins, 4, 8, 8)), x)


def test_shift_mask_regions():
  res, w, s = 8, 4, 2
  mask = windows.shift_attention_mask(res, w, s)
  assert mask.shape == ((res // w) ** 2, w * w, w * w)
  assert set(np.unique(mask)) == {0.0, windows.MASK_VALUE}
  # The top-left window lies inside region 0 entirely: nothing masked.
  assert not mask[0].any()
  # The bottom-right window mixes 4 regions of 2x2 tokens each: token (0,0) and (3,3) differ.
  last = mask[-1]
  assert last[0, 15] == windows.MASK_VALUE and last[0, 1] == 0.0 and last[0, 2] == windows.MASK_VALUE
  np.testing.assert_array_equal(last, last.T)
  assert windows.shift_attention_mask(res, w, 0) is None


@pytest.mark.parametrize("res,window,shift,expected", [
    (32, 8, 4, (8, 4)), (16, 8, 4, (8, 4)), (8, 8, 4, (8, 0)), (4, 8, 4, (4, 0)), (2, 4, 2, (2, 0))])
def test_window_clamp(res, window, shift, expected):
  assert windows.effective_window(res, window, shift) == expected


def test_onehot_gathers_the_table():
  table = np.random.default_rng(0).normal(size=(49, 3)).astype(np.float32)
  onehot = windows.relative_position_onehot(4)
  np.testing.assert_array_equal(onehot @ table, table[windows.relative_position_index(4).reshape(-1)])
