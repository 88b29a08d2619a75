"""The ssl-HDF5 shard writer: chunked appends, extra columns, checks naming the file, atomicity."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lvm_jax.data import ssl_schema, ssl_writer
from lvm_jax.data.hdf5_source import SslLegacySurveySource
from lvm_jax.errors import UserError


def _catalogue(n, start=0):
  rows = np.arange(start, start + n)
  return {"release": np.full(n, 9010), "brickid": rows + 100, "objid": rows,
          "ra": 10 + rows * 1e-3, "dec": -rows * 1e-3}


def _images_nhwc(n, start=0, npix=8):
  x = np.arange(start, start + n, dtype=np.float32)[:, None, None, None]
  return x + np.zeros((n, npix, npix, 3), np.float32) + np.arange(3, dtype=np.float32) * 0.1


def test_appended_chunks_read_back_as_one_file(tmp_path):
  path = tmp_path / "shard.h5"
  names = ["NGC 4414", "Ménage à trois", "x" * 40, "M51", "a"]
  with ssl_writer.SslShardWriter(path, npix=None, extra_group="labels",
                                 attrs={"origin": "test", "bands": ["g", "r", "z"]}) as shard:
    shard.append(_images_nhwc(3), _catalogue(3), {"name": names[:3], "label": [1, 0, 1]})
    shard.append(_images_nhwc(2, 3), _catalogue(2, 3), {"name": names[3:], "label": [0, 1]})
    assert not path.exists() and shard.partial.exists()  # complete only once closed
  assert path.exists() and not shard.partial.exists()
  with h5py.File(path) as f:
    assert f["images"].shape == (5, 3, 8, 8) and f["images"].dtype == np.float32
    assert f["objid"].dtype == np.int64 and f["labels/label"].shape == (5,)
    assert [v.decode("utf-8") for v in f["labels/name"][()]] == names
    assert f.attrs["origin"] == "test" and f.attrs["bands"] == '["g", "r", "z"]'
  source = SslLegacySurveySource(path, columns=["ra", "labels/label", "labels/name"])
  record = source[4]
  np.testing.assert_allclose(record["image"][0, 0], [4.0, 4.1, 4.2], rtol=1e-6)
  assert record["id"] == "9010_104_4" and record["labels/label"] == 1
  assert record["labels/name"].decode() == "a"


def test_declared_text_width_and_allocated_rows(tmp_path):
  path = tmp_path / "s.h5"
  with ssl_writer.SslShardWriter(path, npix=8, rows=6, extra_dtypes={"kind": "S4"}) as shard:
    shard.append(_images_nhwc(4), _catalogue(4), {"kind": ["a", "bb", "ccc", "dddd"]})
  with h5py.File(path) as f:  # trimmed to the rows written
    assert f["images"].shape[0] == 4 and f["truth/kind"].dtype == np.dtype("S4")
    assert f["truth/kind"][3] == b"dddd"


def test_channel_first_equals_channel_last(tmp_path):
  images = _images_nhwc(2)
  a = ssl_writer.write_shard(tmp_path / "a.h5", images, _catalogue(2), npix=8)
  b = ssl_writer.write_shard(tmp_path / "b.h5", images.transpose(0, 3, 1, 2), _catalogue(2),
                             npix=8, channels_first=True)
  with h5py.File(a) as fa, h5py.File(b) as fb:
    np.testing.assert_array_equal(fa["images"][()], fb["images"][()])


@pytest.mark.parametrize("change, pattern", [
    (lambda img, cat, ext: (img[..., :2], cat, ext), r"\(N, npix, npix, 3\)"),
    (lambda img, cat, ext: (img[:, :, :6], cat, ext), r"\(N, npix, npix, 3\)"),
    (lambda img, cat, ext: (img.astype(complex), cat, ext), "complex128"),
    (lambda img, cat, ext: (img, {**cat, "ra": cat["ra"][:2]}, ext), "'ra'.*shape"),
    (lambda img, cat, ext: (img, {k: v for k, v in cat.items() if k != "objid"}, ext),
     "missing.*objid"),
    (lambda img, cat, ext: (img, {**cat, "colour": cat["ra"]}, ext), "unknown.*colour"),
    (lambda img, cat, ext: (img, {**cat, "brickid": cat["brickid"] + 0.5}, ext),
     "brickid.*float64"),
    (lambda img, cat, ext: (img, cat, {"label": [1, 2]}), "label.*3 rows"),
])
def test_bad_first_chunk_names_file_and_column(tmp_path, change, pattern):
  path = tmp_path / "bad.h5"
  images, catalogue, extra = change(_images_nhwc(3), _catalogue(3), {"label": [1, 0, 1]})
  with pytest.raises(ssl_writer.SslWriteError, match=pattern) as info:
    with ssl_writer.SslShardWriter(path, npix=8) as shard:
      shard.append(images, catalogue, extra)
  assert str(path) in str(info.value) and isinstance(info.value, UserError)
  assert not path.exists() and not shard.partial.exists()  # nothing half-written is left


def test_later_chunks_must_match_the_first(tmp_path):
  shard = ssl_writer.SslShardWriter(tmp_path / "s.h5", npix=None, extra_dtypes={"kind": "S2"})
  shard.append(_images_nhwc(2), _catalogue(2), {"kind": ["a", "b"], "n": [1, 2]})
  with pytest.raises(ssl_writer.SslWriteError, match="16x16 stamps after 8x8"):
    shard.append(_images_nhwc(1, npix=16), _catalogue(1), {"kind": ["c"], "n": [3]})
  with pytest.raises(ssl_writer.SslWriteError, match=r"truth columns \['kind'\] differ"):
    shard.append(_images_nhwc(1), _catalogue(1), {"kind": ["c"]})
  with pytest.raises(ssl_writer.SslWriteError, match="'kind': row 3 holds 3 bytes"):
    shard.append(_images_nhwc(2), _catalogue(2), {"kind": ["c", "ddd"], "n": [3, 4]})
  with pytest.raises(ssl_writer.SslWriteError, match="'n': cannot store float64 as int64"):
    shard.append(_images_nhwc(1), _catalogue(1), {"kind": ["c"], "n": [3.5]})
  shard.append(_images_nhwc(1, 2), _catalogue(1, 2), {"kind": ["c"], "n": [3]})
  path = shard.close()
  with h5py.File(path) as f:
    assert f["images"].shape[0] == 3 and f["truth/n"][()].tolist() == [1, 2, 3]


def test_sim_file_layout_unchanged(tmp_path):
  """The simulator's writer: declared truth dtypes, sim attributes, full-size datasets."""
  from lvm_jax.sim import survey_file
  truth = {"class_name": ("S16", b""), "mag_r": ("float32", np.nan)}
  images = _images_nhwc(3, npix=16).transpose(0, 3, 1, 2)
  catalogue = {name: np.zeros((3, *shape), dtype) for name, (shape, dtype)
               in ssl_schema.CATALOGUE_COLUMNS.items()}
  catalogue["source_type"] = np.array([b"DEV", b"EXP", b"PSF"])
  path = tmp_path / "sim.h5"
  with survey_file.SurveyFile(str(path), 3, truth, stamp=16, attrs={"seed": 4}) as out:
    out.write(0, images[:2], {k: v[:2] for k, v in catalogue.items()},
              {"class_name": np.array([b"spiral", b"elliptical"]), "mag_r": [18.0, 19.0]})
    with pytest.raises(ValueError, match="part at row 0, expected row 2"):
      out.write(0, images[2:], {k: v[2:] for k, v in catalogue.items()},
                {"class_name": np.array([b"lens"]), "mag_r": [17.0]})
    out.write(2, images[2:], {k: v[2:] for k, v in catalogue.items()},
              {"class_name": np.array([b"lens"]), "mag_r": [17.0]})
  with h5py.File(path) as f:
    assert set(f) == {*ssl_schema.CATALOGUE_COLUMNS, "images", "truth"}
    assert f["truth/class_name"].dtype == np.dtype("S16")
    assert f["truth/mag_r"].dtype == np.float32 and f["truth/class_name"][2] == b"lens"
    assert f["source_type"].dtype == np.dtype("S3") and bool(f.attrs["simulated"])
    assert f.attrs["generator"] == "lvm_jax.sim" and '"seed": 4' in f.attrs["sim_config"]


def test_own_ids_across_chunks_name_the_records_and_compress(tmp_path):
  path = tmp_path / "ids.h5"
  with ssl_writer.SslShardWriter(path, npix=8, compression="gzip") as shard:
    shard.append(_images_nhwc(2), _catalogue(2), ids=["588848901537202306", "Ménage"])
    shard.append(_images_nhwc(1, 2), _catalogue(1, 2), ids=["m51"])
  with h5py.File(path) as f:
    assert f[ssl_schema.ROW_ID].shape == (3,) and f["images"].compression == "gzip"
  assert SslLegacySurveySource(path)[1]["id"] == "Ménage"
  with pytest.raises(UserError, match=r"ids2\.h5.*some chunks only"):
    with ssl_writer.SslShardWriter(tmp_path / "ids2.h5", npix=8) as shard:
      shard.append(_images_nhwc(1), _catalogue(1), ids=["a"])
      shard.append(_images_nhwc(1, 1), _catalogue(1, 1))
  with pytest.raises(UserError, match=r"ids3\.h5.*compression"):
    ssl_writer.SslShardWriter(tmp_path / "ids3.h5", compression="zstd")
