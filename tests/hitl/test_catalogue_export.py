"""A Session opens an `lvm-jax export` folder directly, whatever the folder is called."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_jax.hitl import load_catalogue


@pytest.mark.parametrize("out_name", ["embeddings", "my_export"])
def test_export_folder_loads_from_out_and_parts_dir(tmp_path, out_name):
  out = tmp_path / out_name
  (out / "embeddings").mkdir(parents=True)
  emb = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  table = pa.table({
      "id": [f"9010_1_{i}" for i in range(5)], "ra": np.linspace(1, 2, 5),
      "dec": np.linspace(-1, 0, 5),
      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 4)})
  pq.write_table(table.slice(0, 3), out / "embeddings" / "part-00000.parquet")
  pq.write_table(table.slice(3), out / "embeddings" / "part-00001.parquet")
  for path in (out, out / "embeddings"):
    cat = load_catalogue(str(path))
    np.testing.assert_array_equal(cat.embeddings, emb)
    assert list(cat.ids) == [f"9010_1_{i}" for i in range(5)]
    np.testing.assert_allclose(cat.ra, np.linspace(1, 2, 5))
