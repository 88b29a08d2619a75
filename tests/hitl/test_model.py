from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax.hitl import TRACE_COUNTS, Session, bucket_size, roc_auc
from lvm_jax.hitl import model as model_lib


def test_bucket_size():
  assert [bucket_size(n) for n in (0, 1, 16, 17, 32, 33, 100, 129)] == [
      16, 16, 16, 32, 32, 64, 128, 256]


def test_balanced_weights_give_each_class_half():
  y = jnp.array([1, 0, 0, 0, 0, 0], jnp.float32)
  mask = jnp.array([1, 1, 1, 1, 0, 0], jnp.float32)
  w = model_lib._balanced_weights(y, mask)  # pylint: disable=protected-access
  np.testing.assert_allclose(w, [0.5, 1 / 6, 1 / 6, 1 / 6, 0, 0], rtol=1e-6)


def test_second_round_in_same_bucket_does_not_recompile(small, make_catalogue):
  x, truth, _, _ = make_catalogue(n=300, seed=3)
  s = Session(x, per_round=5, **small)
  pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
  s.label(np.r_[pos[:5], neg[:13]], [1] * 5 + [0] * 13)      # 18 labels: bucket 32
  s.next_round()
  before = TRACE_COUNTS["fit"]
  s.label(np.r_[pos[5:8], neg[13:17]], [1] * 3 + [0] * 4)   # 25 labels: still bucket 32
  s.next_round()
  assert TRACE_COUNTS["fit"] == before
  s.label(neg[17:30], 0)                                     # 38 labels: bucket 64
  s.next_round()
  assert TRACE_COUNTS["fit"] == before + 1


def test_training_separates_the_classes(make_catalogue):
  x, truth, _, _ = make_catalogue(n=400, seed=1)
  rows = np.r_[np.flatnonzero(truth)[:10], np.flatnonzero(~truth)[:30]]
  params = model_lib.train(x, rows, truth[rows].astype(np.float32), jax.random.key(0),
                           hidden=64, steps=60)
  scores = model_lib.BlockScorer(x, jnp.float32)(params)
  assert scores.shape == (400,)
  assert roc_auc(truth, scores) > 0.95 and scores[truth].mean() > 0.5 > scores[~truth].mean()
  fast = model_lib.BlockScorer(x, jnp.bfloat16, threads=2)(params)
  np.testing.assert_allclose(fast, scores, atol=0.05)
