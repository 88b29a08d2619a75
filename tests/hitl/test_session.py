from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_jax.hitl import Session


def _prompts(truth, k=4):
  pos, neg = np.flatnonzero(truth)[:k], np.flatnonzero(~truth)[:3 * k]
  return np.r_[pos, neg], [1] * k + [0] * (3 * k)


@pytest.mark.parametrize("strategy", ["paper", "boundary", "random"])
def test_never_recommends_labelled_objects(catalogue, strategy, small):
  x, truth, _, _ = catalogue
  s = Session(x, strategy=strategy, per_round=20, audit_fraction=0.2, **small)
  s.label(*_prompts(truth))
  s.label(np.flatnonzero(~truth)[50:60], "unsure")
  for _ in range(3):
    ids = s.next_round()
    assert len(ids) == 20 and len(set(ids.tolist())) == 20
    assert not set(ids.tolist()) & set(s.labels())
    s.label(ids, truth[ids].astype(int))
  assert s.scores().shape == (len(x),)


def test_audit_route_marked_and_recorded(catalogue, small):
  x, truth, _, _ = catalogue
  s = Session(x, per_round=10, audit_fraction=0.3, **small)
  s.label(*_prompts(truth))
  ids = s.next_round()
  routes = [s.pending[i] for i in ids.tolist()]
  assert routes.count("audit") == 3 and routes.count("recommended") == 7
  s.label(ids, truth[ids].astype(int))
  s.next_round()
  est = s.audit_report()
  assert est["audited"] == 3 and 0.0 <= est["completeness_lo"] <= est["completeness_hi"] <= 1.0
  assert Session(x, per_round=10, **small).audit_fraction == 0.0


def test_relabel_and_undo_keep_history(catalogue, small):
  x, _, _, _ = catalogue
  s = Session(x, **small)
  s.label([1, 2], 1, grade="A")
  s.label(1, 0, note="second look: a ring galaxy")
  assert s.labels() == {1: "0", 2: "1"}
  assert s.undo() == [1]
  assert s.labels() == {1: "1", 2: "1"}
  assert sorted(s.undo()) == [1, 2]
  assert s.labels() == {}
  assert s.undo() == []
  kinds = [e.kind for e in s.store.events()]
  assert kinds == ["label", "label", "label", "undo", "undo"]


def test_paper_round_uses_latest_round_ratio(catalogue, small):
  x, truth, _, _ = catalogue
  s = Session(x, per_round=10, alpha=0.5, **small)
  pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
  s.label(np.r_[pos[:2], neg[:10]], [1] * 2 + [0] * 10)  # P/N = 0.2 <= alpha: high scores
  high = s.next_round()
  sc = s.scores()
  unl = np.setdiff1d(np.arange(len(x)), np.r_[pos[:2], neg[:10]])
  assert np.isclose(sc[high].min(), np.sort(sc[unl])[::-1][9])
  s.label(high, 1)                                        # round 2: P/N = 10/0 -> low
  low = s.next_round()
  assert s.scores()[low].max() <= np.sort(s.scores()[np.setdiff1d(unl, high)])[9] + 1e-7


def test_truth_metrics_each_round(catalogue, small):
  x, truth, _, _ = catalogue
  s = Session(x, truth=truth, per_round=10, **small)
  s.label(*_prompts(truth))
  for _ in range(2):
    ids = s.next_round()
    s.label(ids, truth[ids].astype(int))
  assert [h["round"] for h in s.history] == [1, 2]
  assert {"aupr", "auc", "purity", "completeness", "positives_found"} <= set(s.history[-1])
  assert s.history[-1]["aupr"] > 0.5
  curve = s.discovery_curve()
  assert len(curve) == 36 and curve[-1] == truth[list(s.labels())].sum()


def test_parquet_ids_radec_and_extra_features(tmp_path, catalogue, small):
  x, truth, ra, dec = catalogue
  ids = np.arange(len(x)) * 7 + 1_000_000_000_000
  path = tmp_path / "emb.parquet"
  emb = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
  pq.write_table(pa.table({"id": ids, "embedding": emb, "ra": ra, "dec": dec,
                           "is_lens": truth, "mag": np.linspace(18, 24, len(x))}), path)
  s = Session(str(path), truth="is_lens", extra_features=["mag"], per_round=5, **small)
  assert s.inputs.shape == (len(x), small["fast_dims"] + 1)
  s.label(ids[np.flatnonzero(truth)[:3]], 1)
  s.label(ids[np.flatnonzero(~truth)[:5]], 0)
  rec = s.next_round()
  assert set(rec.tolist()) <= set(ids.tolist())
  with pytest.raises(KeyError):
    s.label(12345, 1)
  np.savez(tmp_path / "emb.npz", embeddings=x, ids=ids.astype(str))
  s2 = Session(str(tmp_path / "emb.npz"), **small)
  s2.label(str(ids[0]), 1)
  assert s2.labels() == {str(ids[0]): "1"}


def test_exact_path(catalogue):
  x, truth, _, _ = catalogue
  s = Session(x, fast=False, hidden=64, steps=30, truth=truth)
  assert s.inputs.shape == x.shape
  s.label(*_prompts(truth))
  s.next_round()
  assert s.history[-1]["aupr"] > 0.5
