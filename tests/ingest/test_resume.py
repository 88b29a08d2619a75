"""A killed ingest resumes from its last complete shard and gives the uninterrupted output."""

from __future__ import annotations

import filecmp

import h5py
import numpy as np
import pytest

from lvm_jax.ingest import builder, layout, writer

OPTIONS = dict(label_column="class_name", shard_size=3, fractions=(("pretrain", 0.5),
                                                                   ("train", 0.3), ("test", 0.2)))


def _contents(out):
  """Every shard's datasets, the tables and the split files, for comparison."""
  import pyarrow.parquet as pq
  data = {}
  for path in sorted(out.glob("*.h5")):
    with h5py.File(path) as f:
      f.visititems(lambda name, obj: data.__setitem__(
          f"{path.name}/{name}", obj[()]) if isinstance(obj, h5py.Dataset) else None)
  for name in (layout.ROWS, layout.REJECTS):
    data[name] = pq.read_table(out / name).to_pydict()
  for path in sorted((out / layout.SPLITS).iterdir()):
    data[path.name] = path.read_bytes()
  return data


def _assert_same(a, b):
  assert a.keys() == b.keys()
  for key in a:
    if isinstance(a[key], np.ndarray):
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    else:
      assert a[key] == b[key], key


def test_resume_after_a_kill_matches_an_uninterrupted_run(jpeg_set, tmp_path, monkeypatch):
  folder, csv = jpeg_set
  whole = tmp_path / "whole"
  builder.ingest(folder, csv, whole, builder.IngestOptions(**OPTIONS))

  calls = []
  real = writer.write_shard

  def dies_on_third(path, *args, **kwargs):
    calls.append(path)
    if len(calls) == 3:
      (path.parent / (path.name + ".partial")).write_bytes(b"half a shard")
      raise KeyboardInterrupt  # killed while writing
    return real(path, *args, **kwargs)

  monkeypatch.setattr(writer, "write_shard", dies_on_third)
  resumed = tmp_path / "resumed"
  with pytest.raises(KeyboardInterrupt):
    builder.ingest(folder, csv, resumed, builder.IngestOptions(**OPTIONS))
  assert len(list(resumed.glob("*.h5"))) == 2 and not (resumed / layout.ROWS).exists()
  calls.clear()
  monkeypatch.setattr(writer, "write_shard", real)
  summary = builder.ingest(folder, csv, resumed, builder.IngestOptions(**OPTIONS, workers=2))
  assert summary["stored"] == 8
  assert not list(resumed.glob("*.partial"))
  _assert_same(_contents(whole), _contents(resumed))
  assert filecmp.cmp(whole / layout.SPLITS / "test.csv", resumed / layout.SPLITS / "test.csv",
                     shallow=False)


def test_parallel_workers_give_the_serial_output(jpeg_set, tmp_path):
  folder, csv = jpeg_set
  builder.ingest(folder, csv, tmp_path / "one", builder.IngestOptions(**OPTIONS))
  builder.ingest(folder, csv, tmp_path / "two", builder.IngestOptions(**OPTIONS, workers=2))
  _assert_same(_contents(tmp_path / "one"), _contents(tmp_path / "two"))
