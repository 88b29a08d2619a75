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


def test_similar_ranks_by_direction_not_by_score_or_norm():
  """Prototype ranking: look-alikes of the positives first, whatever their norm and the MLP's
  scores (here highest for the rows pointing away from the positives)."""
  rng = np.random.default_rng(2)
  pos_dir, neg_dir = np.eye(8)[0], np.eye(8)[1]
  feats = np.concatenate([
      pos_dir + 0.1 * rng.normal(size=(20, 8)),          # rows 0-19: look like the positives
      neg_dir + 0.1 * rng.normal(size=(20, 8)),          # rows 20-39: look like the negatives
      50.0 * (neg_dir + 0.1 * rng.normal(size=(5, 8))),  # rows 40-44: far-out outliers
  ]).astype(np.float32)
  scores = np.r_[np.full(20, 0.2), np.full(20, 0.5), np.full(5, 1.0)].astype(np.float32)
  positives, negatives = np.array([0, 1, 2]), np.array([20, 21])
  candidates = np.setdiff1d(np.arange(45), np.r_[0, 1, 2, 20, 21])
  ctx = SelectionContext(scores=scores, candidates=candidates,
                         count=10, features=feats, latest_positives=3, latest_negatives=2,
                         alpha=0.5, rng=np.random.default_rng(0), positive_rows=positives,
                         negative_rows=negatives)
  picks = get_strategy("similar")(ctx)
  assert len(picks) == 10 and set(picks.tolist()) <= set(range(3, 20))
  # the paper's "high" side would have taken the outliers
  assert set(get_strategy("paper")(_ctx(scores, count=5, p=0, n=5)).tolist()) == set(range(40, 45))
  # a row's scale does not change its score
  from lvm_jax.hitl.strategies import prototype_scores
  before = prototype_scores(feats, positives, negatives)
  feats[5] *= 100.0
  np.testing.assert_allclose(prototype_scores(feats, positives, negatives), before, rtol=1e-5)


def test_similar_is_random_until_a_positive_exists():
  ctx = _ctx(np.zeros(50), count=4, seed=5)
  random = get_strategy("random")(_ctx(np.zeros(50), count=4, seed=5))
  np.testing.assert_array_equal(get_strategy("similar")(ctx), random)


def test_session_passes_every_label_to_the_strategy(make_catalogue, monkeypatch):
  """`Session` hands all labelled rows (prompts and later rounds) to `similar`."""
  from lvm_jax.hitl import Session
  emb, *_ = make_catalogue(n=200, dim=16)
  with Session(emb, strategy="similar", per_round=5, hidden=32, fast_dims=8, steps=5) as s:
    s.label([0, 1, 2], [1, 1, 1])
    s.label([3, 4], [0, 0])
    first = s.next_round()
    s.label(first.tolist(), [1] * len(first))
    seen = {}
    original = STRATEGIES["similar"]
    monkeypatch.setitem(STRATEGIES, "similar", lambda ctx: original(seen.setdefault("ctx", ctx)))
    s.next_round()
  ctx = seen["ctx"]
  assert sorted(ctx.positive_rows.tolist()) == sorted([0, 1, 2] + first.tolist())
  assert ctx.negative_rows.tolist() == [3, 4]


def test_neighbours_finds_scattered_positives_before_the_negatives_between_them():
  # Positives in two clusters (x and y axes); negatives between them, where the positives'
  # mean points. One labelled positive per cluster, three labelled negatives in the middle.
  rng = np.random.default_rng(0)
  jitter = lambda n: rng.normal(0, 0.05, (n, 2))  # noqa: E731
  a, b = np.array([1.0, 0.05]) + jitter(6), np.array([0.05, 1.0]) + jitter(6)
  middle = np.array([0.7, 0.7]) + jitter(12)
  features = np.concatenate([a, b, middle]).astype(np.float32)
  positives, negatives = np.array([0, 6]), np.array([12, 13, 14])
  cand = np.setdiff1d(np.arange(len(features)), np.r_[positives, negatives])
  ctx = SelectionContext(scores=np.full(len(features), 0.5, np.float32), candidates=cand,
                         count=10, features=features, latest_positives=2, latest_negatives=3,
                         alpha=0.5, rng=np.random.default_rng(0), positive_rows=positives,
                         negative_rows=negatives)
  picked = get_strategy("neighbours")(ctx)
  assert set(picked.tolist()) == set(range(1, 6)) | set(range(7, 12))  # every unlabelled positive


def test_neighbours_is_random_until_a_positive_exists():
  picked = get_strategy("neighbours")(_ctx(np.linspace(0, 1, 10), count=4, seed=3))
  np.testing.assert_array_equal(
      picked, get_strategy("random")(_ctx(np.linspace(0, 1, 10), count=4, seed=3)))
