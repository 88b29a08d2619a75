"""`lvm_jax.export.search` against brute-force NumPy, search by position, crossmatch and the CLI."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_jax import cli
from lvm_jax.export import search
from lvm_jax.export import crossmatch, read_embeddings


def _brute_force(queries, database, k):
  q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
  d = database / np.linalg.norm(database, axis=1, keepdims=True)
  scores = q.astype(np.float64) @ d.T.astype(np.float64)
  index = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(scores, index, axis=1), index


@pytest.mark.parametrize("n,k", [(1000, 10), (37, 50)])
def test_blocked_knn_equals_brute_force(n, k):
  rng = np.random.default_rng(n)
  database = rng.standard_normal((n, 16)).astype(np.float32)
  queries = rng.standard_normal((45, 16)).astype(np.float32)
  scores, index = search.cosine_knn(queries, database, k, query_block=16, db_block=128)
  expected_scores, expected_index = _brute_force(queries, database, min(k, n))
  np.testing.assert_array_equal(index, expected_index)
  np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_search_by_id_and_by_position(export_8):
  index = search.EmbeddingIndex.from_export(export_8[0])
  i = 7
  rows = index.search_by_id(index.ids[i], k=5)
  _, expected = _brute_force(index.embeddings[i:i + 1], index.embeddings, 6)
  assert [r["id"] for r in rows] == [index.ids[j] for j in expected[0] if j != i][:5]
  assert all(a["similarity"] >= b["similarity"] for a, b in zip(rows, rows[1:]))
  offset = 0.4 / 3600  # deg
  anchor, by_position = index.search_by_position(index.ra[i], index.dec[i] + offset, k=5)
  assert anchor["id"] == index.ids[i]
  assert anchor["separation_arcsec"] == pytest.approx(0.4, abs=1e-3)
  assert [r["id"] for r in by_position] == [r["id"] for r in rows]


def test_crossmatch_keeps_rows_within_the_radius(export_8, tmp_path):
  table = read_embeddings(export_8[0], ["id", "ra", "dec"])
  ra, dec = table.column("ra").to_numpy()[:3], table.column("dec").to_numpy()[:3]
  csv = tmp_path / "cat.csv"
  lines = ["name,RA,Dec"] + [f"near{j},{ra[j]},{dec[j] + 0.5 / 3600}" for j in range(3)]
  lines.append("far,10.0,-40.0")
  csv.write_text("\n".join(lines) + "\n")
  matched = crossmatch.crossmatch(export_8[0], csv, radius_arcsec=1.0)
  assert matched.column("name").to_pylist() == ["near0", "near1", "near2"]
  assert matched.column("lvm_id").to_pylist() == table.column("id").to_pylist()[:3]
  np.testing.assert_allclose(matched.column("sep_arcsec").to_numpy(), 0.5, atol=1e-3)
  out = tmp_path / "matched.parquet"
  assert cli.main(["crossmatch", "--embeddings", str(export_8[0]), "--catalogue", str(csv),
                   "--radius", "1", "--out", str(out)]) == 0
  assert pq.read_table(out).num_rows == 3


def test_search_cli_prints_neighbours_and_writes_a_mosaic(export_8, survey_dir, tmp_path,
                                                         capsys):
  table = read_embeddings(export_8[0], ["id", "ra", "dec"])
  ra, dec = table.column("ra")[0].as_py(), table.column("dec")[0].as_py()
  args = ["search", "--embeddings", str(export_8[0]), "--ra", str(ra), "--dec", str(dec),
          "-k", "4"]
  assert cli.main(args) == 0
  assert "mosaic skipped" in capsys.readouterr().out
  png = tmp_path / "n.png"
  assert cli.main(args + ["--images", str(survey_dir), "--png", str(png)]) == 0
  printed = capsys.readouterr().out
  assert table.column("id")[0].as_py() in printed and png.stat().st_size > 1000
