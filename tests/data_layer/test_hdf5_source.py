"""ssl-legacysurvey HDF5: writer enforces the schema; the source reads lazily across files."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from lvm_jax.data import hdf5_source, ssl_schema
from lvm_jax.data.validate import UnreadableFileError


def _catalogue(n, start=0):
  rows = np.arange(start, start + n)
  return {"ra": rows * 1.5, "dec": -rows * 0.5, "release": np.full(n, 9010),
          "brickid": rows + 100, "objid": rows * 7, "flux": np.ones((n, 3)) * rows[:, None],
          "psfsize": np.full((n, 3), 1.2), "z_phot_median": np.full(n, np.nan),
          "source_type": np.array(["DEV", "EXP", "PSF", "REX", "SER"] * 4)[:n]}


def _images(n, start=0, npix=16):
  x = np.arange(start, start + n, dtype=np.float64)[:, None, None, None]
  return x + np.zeros((n, 3, npix, npix)) + np.arange(3)[None, :, None, None] * 0.1


@pytest.fixture
def two_files(tmp_path):
  a = hdf5_source.write_ssl_hdf5(tmp_path / ssl_schema.file_name(0, 3), _images(3), _catalogue(3),
                                 truth={"sersic_n": np.arange(3.0), "kind": np.array(["a", "b", "c"])},
                                 npix=None)
  b = hdf5_source.write_ssl_hdf5(tmp_path / ssl_schema.file_name(3, 8), _images(5, 3),
                                 _catalogue(5, 3), npix=None)
  return a, b


def test_writer_dtypes(two_files):
  with h5py.File(two_files[0]) as f:
    assert f["images"].dtype == np.float32 and f["images"].shape == (3, 3, 16, 16)
    for name, (shape, dtype) in ssl_schema.CATALOGUE_COLUMNS.items():
      if name in f:
        assert f[name].dtype == np.dtype(dtype) and f[name].shape == (3, *shape), name
    assert f["source_type"][1] == b"EXP"
    assert f["truth/kind"][2] == b"c"


def test_global_index_and_records(two_files):
  source = hdf5_source.SslLegacySurveySource(two_files, columns=["ra", "flux"])
  assert len(source) == 8
  rec = source[4]
  assert rec["image"].shape == (16, 16, 3) and rec["image"].dtype == np.float32
  np.testing.assert_allclose(rec["image"][0, 0], [4.0, 4.1, 4.2], rtol=1e-6)
  assert rec["ra"] == 6.0 and rec["flux"].tolist() == [4.0, 4.0, 4.0]
  assert rec["id"] == "9010_104_28"
  assert rec["source_file"] == str(two_files[1]) and rec["source_index"] == 1
  assert source[2]["source_index"] == 2 and source[-1]["id"] == "9010_107_49"
  with pytest.raises(IndexError):
    source[8]


def test_truth_columns_by_path(two_files):
  source = hdf5_source.SslLegacySurveySource(two_files[0], columns=["truth/sersic_n"])
  assert source[2]["truth/sersic_n"] == 2.0


def test_lazy_and_picklable(two_files):
  source = hdf5_source.SslLegacySurveySource(two_files)
  assert source._handles == {}  # nothing held open after __init__
  source[0]
  assert len(source._handles) == 1
  clone = pickle.loads(pickle.dumps(source))
  assert clone._handles == {}
  assert clone[7]["id"] == source[7]["id"] == "9010_107_49"
  assert set(source[0]) == {"image", "ra", "dec", "id", "source_file", "source_index"}
  source.close()


def test_missing_column_names_file_and_column(two_files, tmp_path):
  with_z = hdf5_source.write_ssl_hdf5(tmp_path / "with_z.h5", _images(1),
                                      {**_catalogue(1), "z_spec": [0.1]}, npix=None)
  assert hdf5_source.SslLegacySurveySource(with_z, columns=["z_spec"])[0]["z_spec"] == np.float32(0.1)
  with pytest.raises(KeyError, match=r"images_npix152_000000003_000000008\.h5.*'z_spec'"):
    hdf5_source.SslLegacySurveySource([with_z, two_files[1]], columns=["z_spec"])


def test_writer_rejects_bad_input(tmp_path):
  path = tmp_path / "bad.h5"
  with pytest.raises(ValueError, match="152x152"):
    hdf5_source.write_ssl_hdf5(path, _images(2), _catalogue(2))
  with pytest.raises(ValueError, match="N, 3"):
    hdf5_source.write_ssl_hdf5(path, np.zeros((2, 4, 152, 152)), _catalogue(2))
  cat = _catalogue(2)
  cat["flux"] = np.ones((2, 4))
  with pytest.raises(ValueError, match="flux"):
    hdf5_source.write_ssl_hdf5(path, _images(2), cat, npix=None)
  cat = _catalogue(2)
  cat["objid"] = np.array([1.5, 2.5])
  with pytest.raises(ValueError, match="objid.*float64"):
    hdf5_source.write_ssl_hdf5(path, _images(2), cat, npix=None)
  cat = _catalogue(2)
  del cat["brickid"]
  with pytest.raises(ValueError, match="brickid"):
    hdf5_source.write_ssl_hdf5(path, _images(2), cat, npix=None)
  with pytest.raises(ValueError, match="unknown.*colour"):
    hdf5_source.write_ssl_hdf5(path, _images(2), {**_catalogue(2), "colour": [1, 2]}, npix=None)
  cat = _catalogue(2)
  cat["source_type"] = np.array(["DEV", "DUPLICATE"])
  with pytest.raises(ValueError, match="source_type"):
    hdf5_source.write_ssl_hdf5(path, _images(2), cat, npix=None)
  with pytest.raises(ValueError, match="truth.*rows"):
    hdf5_source.write_ssl_hdf5(path, _images(2), _catalogue(2), truth={"n": [1, 2, 3]}, npix=None)


def test_full_size_stamp_round_trip(tmp_path):
  images = np.random.default_rng(0).normal(size=(2, 3, 152, 152)).astype(np.float32)
  path = hdf5_source.write_ssl_hdf5(tmp_path / "full.h5", images, _catalogue(2))
  rec = hdf5_source.SslLegacySurveySource(path)[1]
  assert rec["image"].shape == (152, 152, 3)
  np.testing.assert_array_equal(rec["image"], images[1].transpose(1, 2, 0))


def test_truncated_hdf5_names_file(tmp_path):
  path = hdf5_source.write_ssl_hdf5(tmp_path / "trunc.h5", _images(4, npix=152), _catalogue(4))
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(UnreadableFileError, match="trunc.h5"):
    hdf5_source.SslLegacySurveySource(path)
  path.write_bytes(b"not hdf5 at all")
  with pytest.raises(UnreadableFileError, match="trunc.h5"):
    hdf5_source.SslLegacySurveySource(path)


def test_handles_reopened_in_a_new_process(two_files, monkeypatch):
  source = hdf5_source.SslLegacySurveySource(two_files)
  source[0]
  inherited = source._handles[0]
  monkeypatch.setattr(hdf5_source.os, "getpid", lambda: -1)  # as in a forked worker
  assert source[1]["id"] == "9010_101_7"
  assert source._handles[0] is not inherited
  inherited.close()
  source.close()


def test_columns_cached_per_process_and_rows_copied(two_files):
  source = hdf5_source.SslLegacySurveySource(two_files, columns=["ra", "flux"])
  first = source[0]
  cached = source._datasets[0]
  assert isinstance(cached["flux"], np.ndarray) and isinstance(cached["release"], np.ndarray)
  assert isinstance(cached[ssl_schema.IMAGES], h5py.Dataset)
  first["flux"][:] = -1.0  # a caller editing its record must not change the cache
  assert source[0]["flux"].tolist() == [0.0, 0.0, 0.0]
  clone = pickle.loads(pickle.dumps(source))
  assert clone._datasets == {}
  source.close()
  assert source._datasets == {}


def test_large_columns_read_row_by_row(two_files):
  cached = hdf5_source.SslLegacySurveySource(two_files, columns=["ra", "flux", "source_type"])
  uncached = hdf5_source.SslLegacySurveySource(two_files, columns=["ra", "flux", "source_type"],
                                               max_cached_bytes=0)
  for i in range(len(cached)):
    a, b = cached[i], uncached[i]
    assert a["id"] == b["id"] and a["source_type"] == b["source_type"]
    assert type(a["ra"]) is type(b["ra"]) and a["ra"] == b["ra"]
    np.testing.assert_array_equal(a["flux"], b["flux"])
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a["image"].flags.c_contiguous and a["image"].dtype == np.float32
  assert isinstance(uncached._datasets[0]["flux"], h5py.Dataset)
