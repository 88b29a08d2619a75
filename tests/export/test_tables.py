"""The one reader of exported embeddings and the one provenance-table writer, on small tables."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table

from lvm_jax.export import schema, table_writer, tables

IDS = ["9010_1_1", "Ménage_2", "9010_1_3"]


def _part(emb: np.ndarray, ids) -> pa.Table:
  return pa.table({"id": pa.array(ids, pa.string()), "ra": np.arange(len(ids), dtype=float),
                   "dec": -np.arange(len(ids), dtype=float),
                   "flux": schema.fixed_list(np.ones((len(ids), 3), np.float32), pa.float32()),
                   "embedding": schema.fixed_list(emb, pa.float16())})


@pytest.fixture
def export_dir(tmp_path):
  emb = np.arange(5 * 4, dtype=np.float16).reshape(5, 4)
  parts = tmp_path / "out" / schema.PARTS_DIR
  parts.mkdir(parents=True)
  pq.write_table(_part(emb[:3], IDS), parts / "part-00000.parquet")
  pq.write_table(_part(emb[3:], ["b_1", "b_2"]), parts / "part-00001.parquet")
  return tmp_path / "out", emb


def test_read_catalogue_of_a_folder_in_chunk_order(export_dir):
  out, emb = export_dir
  for path in (out, out / schema.PARTS_DIR):
    columns = tables.read_catalogue(path)
    np.testing.assert_array_equal(columns["embedding"], emb)
    assert columns["embedding"].dtype == np.float16
    assert columns["id"].tolist() == [*IDS, "b_1", "b_2"] and columns["id"].dtype.kind == "U"
    assert columns["flux"].shape == (5, 3) and columns["ra"].dtype == np.float64
  assert set(tables.read_catalogue(out, ["id", "embedding"])) == {"id", "embedding"}


def test_read_catalogue_of_one_file_with_variable_lists(tmp_path):
  path = tmp_path / "one.parquet"
  pq.write_table(pa.table({"id": ["a", "b"], "embedding": [[1.0, 2.0], [3.0, 4.0]]}), path)
  columns = tables.read_catalogue(path)
  assert columns["embedding"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
  pq.write_table(pa.table({"id": ["a", "b"], "embedding": [[1.0, 2.0], [3.0]]}), path)
  with pytest.raises(ValueError, match="different lengths"):
    tables.read_catalogue(path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".fits", ".vot"])
def test_write_table_keeps_text_values_and_provenance(tmp_path, suffix):
  path = tmp_path / f"t{suffix}"
  columns = {"id": np.array(IDS), "label": np.array([1, 0, -1]), "score": np.array([.5, .25, 1.])}
  provenance = {"seed": 7, "git_sha": "abc", "note": "ö"}
  assert table_writer.write_table(path, columns, provenance) == str(path)
  if suffix == ".parquet":
    t = pq.read_table(path)
    ids, prov = t.column("id").to_pylist(), t.schema.metadata[b"lvm_jax_provenance"]
  elif suffix == ".csv":
    ids, prov = pcsv.read_csv(path).column("id").to_pylist(), (tmp_path / "t.csv.json").read_text()
  elif suffix == ".fits":
    with fits.open(path) as hdul:
      header = hdul["LABELS"].header
      prov = header["PROVJSON"]
      assert header["SEED"] == 7 and header["TXTENC"] == "UTF-8"
    ids = tables.read_fits_text(path)
  else:
    t = Table.read(path)
    ids = [str(v) for v in t["id"]]
    from astropy.io.votable import parse
    prov = next(i.value for i in parse(str(path)).resources[0].infos
                if i.name == table_writer.PROVENANCE_KEY)
  assert ids == IDS
  assert json.loads(prov) == provenance


def test_unknown_format_is_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown export format '.txt'"):
    table_writer.write_table(tmp_path / "t.txt", {"a": np.zeros(2)}, {})
