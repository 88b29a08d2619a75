"""Which unlabelled objects to show next: strategies registered by name.

  paper     Fu et al. (2024): from the latest round's positives P and negatives N, if
            P/N <= alpha show the highest-scoring objects, else the lowest-scoring.
  boundary  half top-score exploitation, half uncertainty sampling at the decision boundary
            (score ~ 0.5), each half spread out by greedy farthest-point selection in
            feature space. Labelling the confusable look-alikes near the boundary is what
            removes the false positives that the paper's rule accumulates on rare classes.
  similar   prototype ranking: mean cosine similarity to the labelled positives less that to
            the negatives (`prototype_scores`).
  neighbours  a vote of each object's k most similar labelled objects, weighted by similarity
            (`neighbour_scores`): for rare classes, whose members are scattered, it looks beside
            each labelled positive rather than at their mean.
  random    uniform over the unlabelled objects (a baseline).

A strategy maps a SelectionContext to the row indices to show, best first.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

import numpy as np


def paper_rule(p: int, n: int, alpha: float) -> Literal["high", "low"]:
  """Fu et al.'s switch: "high" if P/N <= alpha, else "low"; N = 0 counts as P/N > alpha."""
  if n == 0:
    return "low"
  return "high" if p / n <= alpha else "low"


@dataclasses.dataclass(frozen=True)
class SelectionContext:
  """What a strategy may look at.

  Attributes:
    scores: (N,) current probability of the positive class.
    candidates: (M,) row indices that may be shown (unlabelled), ascending.
    count: how many rows to return.
    features: (N, k) classifier inputs, for diversity.
    latest_positives, latest_negatives: labels given in the latest round.
    alpha: the paper's threshold on P/N.
    rng: seeded generator for this round.
    trained: False before any 0/1 label exists (scores are then meaningless).
    positive_rows, negative_rows: every object labelled positive / negative so far.
  """
  scores: np.ndarray
  candidates: np.ndarray
  count: int
  features: np.ndarray
  latest_positives: int
  latest_negatives: int
  alpha: float
  rng: np.random.Generator
  trained: bool = True
  positive_rows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
  negative_rows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))


Strategy = Callable[[SelectionContext], np.ndarray]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str):
  """Decorator adding a strategy to STRATEGIES under `name`."""
  def add(fn: Strategy) -> Strategy:
    STRATEGIES[name] = fn
    return fn
  return add


def get_strategy(name: str) -> Strategy:
  if name not in STRATEGIES:
    raise KeyError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
  return STRATEGIES[name]


def _extreme(scores: np.ndarray, candidates: np.ndarray, count: int, high: bool) -> np.ndarray:
  """The `count` candidates with the highest (or lowest) scores, best first, ties by row."""
  count = min(count, len(candidates))
  if count == 0:
    return candidates[:0]
  key = -scores[candidates] if high else scores[candidates]
  part = np.argpartition(key, count - 1)[:count] if count < len(candidates) else np.arange(
      len(candidates))
  part = part[np.lexsort((candidates[part], key[part]))]
  return candidates[part]


def farthest_point(features: np.ndarray, pool: np.ndarray, count: int,
                   chosen: np.ndarray | None = None) -> np.ndarray:
  """Greedy farthest-point selection of `count` rows of `pool` (ordered best first).

  Starts from pool[0] unless `chosen` rows are given; each next pick is the pool row
  farthest (Euclidean, in `features`) from everything picked so far.
  """
  count = min(count, len(pool))
  if count == 0:
    return pool[:0]
  x = features[pool].astype(np.float32)
  if chosen is not None and len(chosen):
    ref = features[chosen].astype(np.float32)
    dist = np.min(((x[:, None, :] - ref[None]) ** 2).sum(-1), axis=1)
    picks = []
  else:
    picks = [0]
    dist = ((x - x[0]) ** 2).sum(-1)
  while len(picks) < count:
    dist[picks] = -1.0
    nxt = int(np.argmax(dist))
    picks.append(nxt)
    dist = np.minimum(dist, ((x - x[nxt]) ** 2).sum(-1))
  return pool[np.asarray(picks)]


@register_strategy("random")
def random_strategy(ctx: SelectionContext) -> np.ndarray:
  count = min(ctx.count, len(ctx.candidates))
  return np.sort(ctx.rng.choice(ctx.candidates, size=count, replace=False))


@register_strategy("paper")
def paper_strategy(ctx: SelectionContext) -> np.ndarray:
  if not ctx.trained:
    return random_strategy(ctx)
  side = paper_rule(ctx.latest_positives, ctx.latest_negatives, ctx.alpha)
  return _extreme(ctx.scores, ctx.candidates, ctx.count, high=side == "high")


def _unit_rows(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def prototype_scores(features: np.ndarray, positive_rows: np.ndarray,
                     negative_rows: np.ndarray) -> np.ndarray:
  """(N,) mean cosine similarity of each row of `features` to the positives, less its mean
  cosine similarity to the negatives (no negatives: the first term alone)."""
  x = _unit_rows(np.asarray(features, np.float32))
  score = x @ x[positive_rows].mean(0)
  if len(negative_rows):
    score -= x @ x[negative_rows].mean(0)
  return score


@register_strategy("similar")
def similar_strategy(ctx: SelectionContext) -> np.ndarray:
  """The candidates most like the labelled positives: prototype ranking by mean cosine
  similarity in the classifier's input space (`prototype_scores`). With a handful of labels
  the MLP's highest scores are objects far out along its decision direction (its ReLU
  extrapolates linearly and its sigmoid saturates, so outliers and ties head the list); this
  ranks by direction alone. Random until a positive is labelled."""
  if not len(ctx.positive_rows):
    return random_strategy(ctx)
  score = prototype_scores(ctx.features, ctx.positive_rows, ctx.negative_rows)
  return _extreme(score, ctx.candidates, ctx.count, high=True)


def neighbour_scores(features: np.ndarray, positive_rows: np.ndarray,
                     negative_rows: np.ndarray, k: int = 10, temperature: float = 0.1
                     ) -> np.ndarray:
  """(N,) similarity-weighted share of positives among each row's k most similar labelled rows
  (cosine similarity s, weights exp(s / temperature)), plus 1e-3 times its largest similarity
  to a positive (which breaks the ties among rows with only positive or only negative
  neighbours)."""
  x = _unit_rows(np.asarray(features, np.float32))
  labelled = np.concatenate([positive_rows, negative_rows]).astype(np.int64)
  is_pos = np.r_[np.ones(len(positive_rows)), np.zeros(len(negative_rows))]
  sim = x @ x[labelled].T  # (N, L)
  k = min(k, len(labelled))
  near = np.argpartition(-sim, k - 1, axis=1)[:, :k]
  s = np.take_along_axis(sim, near, 1)
  w = np.exp((s - s.max(1, keepdims=True)) / temperature)
  vote = (w * is_pos[near]).sum(1) / w.sum(1)
  return vote + 1e-3 * sim[:, :len(positive_rows)].max(1)


@register_strategy("neighbours")
def neighbours_strategy(ctx: SelectionContext) -> np.ndarray:
  """The candidates whose nearest labelled objects are positives (`neighbour_scores`, in the
  classifier's input space). Random until a positive is labelled."""
  if not len(ctx.positive_rows):
    return random_strategy(ctx)
  score = neighbour_scores(ctx.features, ctx.positive_rows, ctx.negative_rows)
  return _extreme(score, ctx.candidates, ctx.count, high=True)


@register_strategy("boundary")
def boundary_strategy(ctx: SelectionContext, exploit_share: float = 0.5,
                      pool_factor: int = 5) -> np.ndarray:
  if not ctx.trained:
    return random_strategy(ctx)
  n_top = int(np.ceil(ctx.count * exploit_share))
  top_pool = _extreme(ctx.scores, ctx.candidates, pool_factor * n_top, high=True)
  top = farthest_point(ctx.features, top_pool, n_top)
  rest = np.setdiff1d(ctx.candidates, top, assume_unique=True)
  n_edge = min(ctx.count - len(top), len(rest))
  uncertainty = np.abs(ctx.scores - 0.5)
  edge_pool = _extreme(uncertainty, rest, pool_factor * n_edge, high=False)
  edge = farthest_point(ctx.features, edge_pool, n_edge, chosen=top)
  return np.concatenate([top, edge])
