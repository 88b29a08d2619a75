from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.hitl import STRATEGIES, SelectionContext, farthest_point, get_strategy, paper_rule


@pytest.mark.parametrize("p, n, alpha, side", [
    (1, 4, 0.5, "high"),    # 0.25 < alpha
    (2, 4, 0.5, "high"),    # exactly alpha
    (3, 4, 0.5, "low"),     # 0.75 > alpha
    (0, 5, 0.5, "high"),    # no positives at all
    (3, 0, 0.5, "low"),     # N = 0 counts as P/N > alpha
    (0, 0, 0.5, "low"),
    (1, 1, 1.0, "high"),
])
def test_paper_rule(p, n, alpha, side):
  assert paper_rule(p, n, alpha) == side


def _ctx(scores, count=3, p=0, n=5, candidates=None, seed=0):
  scores = np.asarray(scores, np.float32)
  cand = np.arange(len(scores)) if candidates is None else np.asarray(candidates)
  feats = np.random.default_rng(0).normal(size=(len(scores), 4)).astype(np.float32)
  return SelectionContext(scores=scores, candidates=cand, count=count, features=feats,
                          latest_positives=p, latest_negatives=n, alpha=0.5,
                          rng=np.random.default_rng(seed))


def test_strategies_registered_by_name():
  assert {"paper", "boundary", "random"} <= set(STRATEGIES)
  assert get_strategy("paper") is STRATEGIES["paper"]
  with pytest.raises(KeyError, match="known"):
    get_strategy("nope")


def test_paper_strategy_picks_extremes_of_candidates():
  scores = [0.9, 0.1, 0.8, 0.2, 0.95, 0.5, 0.05]
  cand = [0, 1, 2, 3, 5, 6]  # row 4 (the top score) is labelled
  high = get_strategy("paper")(_ctx(scores, p=0, n=5, candidates=cand))
  low = get_strategy("paper")(_ctx(scores, p=5, n=1, candidates=cand))
  np.testing.assert_array_equal(high, [0, 2, 5])
  np.testing.assert_array_equal(low, [6, 1, 3])


def test_boundary_mixes_top_and_uncertain():
  rng = np.random.default_rng(1)
  scores = rng.random(500).astype(np.float32)
  picks = get_strategy("boundary")(_ctx(scores, count=10))
  assert len(set(picks.tolist())) == 10
  top = np.sort(scores)[::-1][:25]
  assert np.sum(scores[picks] >= top[-1]) == 5             # half from the top-5x pool
  assert np.all(np.abs(scores[picks[5:]] - 0.5) < 0.05)     # half near the boundary


def test_farthest_point_spreads_out():
  feats = np.array([[0, 0], [0.1, 0], [0.2, 0], [10, 0], [0, 10]], np.float32)
  picks = farthest_point(feats, np.arange(5), 3)
  assert picks[0] == 0 and set(picks[1:].tolist()) == {3, 4}


def test_random_strategy_is_seeded():
  a = get_strategy("random")(_ctx(np.zeros(100), count=5, seed=3))
  b = get_strategy("random")(_ctx(np.zeros(100), count=5, seed=3))
  np.testing.assert_array_equal(a, b)
