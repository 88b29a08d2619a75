"""The optional faiss IVF index of `lvm_jax.export.search` against the exact `cosine_knn`, and the CLI."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lvm_jax import cli
from lvm_jax.export import search

N, DIM, CLUSTERS, SPREAD, QUERIES, K = 20_000, 64, 50, 0.5, 200, 10
NPROBE_GOOD = 16  # of round(4 sqrt(20000)) = 566 lists


def clustered(n: int, seed: int) -> np.ndarray:
  """(n, DIM) float32: CLUSTERS Gaussian centres plus isotropic noise of SPREAD per dimension."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((CLUSTERS, DIM))
  rows = centres[rng.integers(0, CLUSTERS, n)] + SPREAD * rng.standard_normal((n, DIM))
  return rows.astype(np.float32)


@pytest.fixture(scope="module")
def survey():
  """(database (N, DIM), held-out queries, exact (scores, index), IVF index built once)."""
  rows = clustered(N + QUERIES, seed=0)
  database, queries = rows[:N], rows[N:]
  exact = search.cosine_knn(queries, database, K)
  return database, queries, exact, search.IVFIndex.build(database, nprobe=NPROBE_GOOD)


def recall(approx_index: np.ndarray, exact_index: np.ndarray) -> float:
  """Mean fraction of the exact k neighbours that the approximate search returned."""
  return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx_index, exact_index)]))


def test_recall_rises_with_nprobe(survey):
  _, queries, (_, exact_index), ivf = survey
  assert ivf.nlist == search.default_nlist(N) == 566
  scores, index = ivf.knn(queries, K)  # the index's own nprobe
  good = recall(index, exact_index)
  coarse = recall(ivf.knn(queries, K, nprobe=1)[1], exact_index)
  assert good >= 0.95
  assert coarse < 0.8 and coarse < good - 0.2
  assert scores.dtype == np.float32 and index.dtype == np.int64
  assert np.all(np.diff(scores, axis=1) <= 0)


def test_probing_every_list_is_the_exact_search(survey):
  _, queries, (exact_scores, exact_index), ivf = survey
  scores, index = ivf.knn(queries, K, nprobe=ivf.nlist)
  np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
  # Indices agree except where two neighbours' similarities are within float32 rounding.
  gaps = np.abs(np.diff(exact_scores, axis=1))
  near_tie = np.zeros_like(index, bool)
  near_tie[:, 1:] |= gaps < 1e-5
  near_tie[:, :-1] |= gaps < 1e-5
  assert np.mean(near_tie) < 0.05
  np.testing.assert_array_equal(index[~near_tie], exact_index[~near_tie])


def test_short_probes_are_padded_with_minus_one_and_minus_inf():
  # nlist = N: k-means starts from the N rows themselves, so every list holds exactly one row
  # and a probe of p lists finds p rows.
  database = clustered(30, seed=3)
  ivf = search.IVFIndex.build(database, nlist=30, nprobe=1)
  for nprobe in (1, 2):
    scores, index = ivf.knn(database[:4], 5, nprobe=nprobe)
    np.testing.assert_array_equal(index[:, 0], np.arange(4))  # each query finds itself first
    assert np.all(index[:, :nprobe] >= 0) and np.all(np.isfinite(scores[:, :nprobe]))
    np.testing.assert_array_equal(index[:, nprobe:], -1)
    assert np.all(scores[:, nprobe:] == -np.inf)


def test_ties_go_to_the_lower_index_and_builds_are_seeded():
  base = clustered(300, seed=5)
  database = np.concatenate([base, base, base])  # rows i, i + 300, i + 600 identical
  ivf = search.IVFIndex.build(database, nlist=20, nprobe=20, seed=1)
  _, index = ivf.knn(base[:7], 3)
  np.testing.assert_array_equal(index, np.arange(7)[:, None] + [0, 300, 600])
  queries = clustered(50, seed=6)
  again = search.IVFIndex.build(database, nlist=20, nprobe=2, seed=1)
  first = search.IVFIndex.build(database, nlist=20, nprobe=2, seed=1)
  np.testing.assert_array_equal(again.knn(queries, 5)[1], first.knn(queries, 5)[1])


def test_bad_parameters_and_rows_are_named():
  database = clustered(100, seed=7)
  with pytest.raises(ValueError, match="nlist must be in"):
    search.IVFIndex.build(database, nlist=101)
  with pytest.raises(ValueError, match="nprobe must be at least 1"):
    search.IVFIndex.build(database, nlist=4, nprobe=0)
  with pytest.raises(ValueError, match="train_size 3 is below nlist 4"):
    search.IVFIndex.build(database, nlist=4, train_size=3)
  with pytest.raises(ValueError, match=r"queries must be \(Q, 64\)"):
    search.IVFIndex.build(database, nlist=4).knn(database[:2, :32], 3)
  database[42, 3] = np.nan
  with pytest.raises(ValueError, match="row 42 "):
    search.IVFIndex.build(database, nlist=4)
  n = len(database)
  index = search.EmbeddingIndex(
      search.unit_rows(database), np.array([f"g{j}" for j in range(n)], dtype=object),
      np.zeros(n), np.zeros(n), np.array(["a.h5"] * 50 + ["b.h5"] * 50, dtype=object),
      np.arange(n) + 1000)
  with pytest.raises(ValueError, match="no approximate index"):
    index.knn(database[:1], 3, approximate=True)
  with pytest.raises(ValueError, match=r"embedding of g42 \(a.h5, index 1042\) is not finite"):
    index.build_approximate(nlist=4)


def test_missing_faiss_says_how_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
  with pytest.raises(ImportError, match=r"pip install faiss-cpu .*lvm-jax\[ann\]"):
    search.IVFIndex.build(clustered(50, seed=8), nlist=2)


def _table_ids(printed: str) -> list[str]:
  """The id column of `search.format_table` output within printed text."""
  lines = printed.splitlines()
  start = next(j for j, line in enumerate(lines) if line.split()[:2] == ["rank", "id"])
  return [line.split()[1] for line in lines[start + 1:] if line.split()[:1] != ["no"]]


def test_search_cli_approximate(export_8, capsys, monkeypatch):
  index = search.EmbeddingIndex.from_export(export_8[0])
  object_id = str(index.ids[3])
  args = ["search", "--embeddings", str(export_8[0]), "--id", object_id, "-k", "6"]
  assert cli.main(args) == 0
  exact = capsys.readouterr().out
  assert "backend: exact cosine k-NN" in exact
  assert cli.main(args + ["--approximate", "--nprobe", "1000"]) == 0
  approximate = capsys.readouterr().out
  nlist = search.default_nlist(len(index))
  assert f"backend: approximate IVF (faiss IndexIVFFlat, inner product, nlist={nlist}, " \
         f"nprobe={nlist}" in approximate
  assert _table_ids(approximate) == _table_ids(exact) and len(_table_ids(exact)) == 6
  assert object_id not in _table_ids(approximate)
  assert cli.main(args + ["--approximate", "--nprobe", "1"]) == 0
  coarse = _table_ids(capsys.readouterr().out)
  assert object_id not in coarse and 0 < len(coarse) <= 6
  monkeypatch.setitem(sys.modules, "faiss", None)
  assert cli.main(args + ["--approximate"]) == 2
  assert "pip install faiss-cpu" in capsys.readouterr().err
