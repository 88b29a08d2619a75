"""Odd inputs to `lvm-jax export`: quarantined per image, or refused before any work."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_jax.errors import ReaderError, UserError

GOOD = ["good_0", "galaxie_é", "🌌_nebula", "good_3"]


@pytest.fixture(scope="module")
def odd_export(tmp_path_factory, micro_checkpoint, tools):
  """An export of a folder with accents and an emoji in its name, four good cutouts and five
  odd ones, from a checkpoint whose newest step is truncated (step 1 is intact)."""
  from lvm_jax.export import ExportSettings, export_survey
  root = tmp_path_factory.mktemp("odd")
  ckpt = pathlib.Path(shutil.copytree(micro_checkpoint, root / "ckpt"))
  params = tools.largest_file(ckpt / "2" / "params")
  params.write_bytes(params.read_bytes()[:-100])
  data = root / "cafés 🌌"
  data.mkdir()
  for i, name in enumerate(GOOD):
    tools.write_fits(data / f"{name}.fits", tools.blob(seed=i))
  tools.write_fits(data / "two_band.fits", tools.blob(bands=2), bands=("g", "r"))
  tools.write_fits(data / "tiny_8px.fits", tools.blob(size=8))
  tools.write_fits(data / "flat_2d.fits", tools.blob()[1], bands=("r",))
  tools.write_fits(data / "unnamed.fits", tools.blob(), bands=())
  whole = (data / "good_0.fits").read_bytes()
  (data / "truncated.fits").write_bytes(whole[: len(whole) // 2])
  out = root / "out ✓"
  summary = export_survey(ckpt, data, out, ExportSettings(batch=8, chunk_size=4, workers=1,
                                                          compute_dtype="float32",
                                                          formats=("fits",)), progress=False)
  return data, out, summary


def test_one_odd_fits_file_is_quarantined_and_the_export_goes_on(odd_export):
  data, out, summary = odd_export
  assert summary["rows"] == len(GOOD) and summary["rejects"] == 5
  rejects = {pathlib.Path(r["source_file"]).name: r
             for r in pq.read_table(out / "rejects.parquet").to_pylist()}
  reasons = {name: r["reason"] for name, r in rejects.items()}
  assert reasons == {"two_band.fits": "missing_band", "tiny_8px.fits": "too_small",
                     "truncated.fits": "unreadable", "flat_2d.fits": "missing_band",
                     "unnamed.fits": "unnamed_planes"}
  for name, r in rejects.items():
    assert str(data / name) in r["detail"], r  # every reason names its file


def test_non_ascii_ids_and_paths_reach_the_fits_table(odd_export):
  from lvm_jax.export import tables
  data, out, _ = odd_export
  ids = tables.read_fits_text(out / "embeddings.fits", "id")
  assert sorted(ids) == sorted(GOOD)
  files = tables.read_fits_text(out / "embeddings.fits", "source_file")
  assert all(f.startswith(str(data)) for f in files)
  from astropy.io import fits
  assert fits.getheader(out / "embeddings.fits", 1)["TXTENC"] == "UTF-8"


def test_truncated_newest_checkpoint_step_falls_back_for_the_export(odd_export):
  import json
  _, out, _ = odd_export
  assert json.loads((out / "manifest.json").read_text())["fingerprint"]["step"] == 1


def test_non_utf8_file_names_are_refused_before_work(tmp_path, micro_checkpoint, tools):
  from lvm_jax.export import ExportSettings, export_survey
  data = tmp_path / "data"
  data.mkdir()
  tools.write_fits(data / "good.fits", tools.blob())
  os.rename(data / "good.fits", os.fsencode(data) + b"/gal\xff.fits")
  with pytest.raises(ReaderError, match=r"gal.*index 0.*not valid UTF-8"):
    export_survey(micro_checkpoint, data, tmp_path / "out", ExportSettings(batch=8),
                  progress=False)
  assert not (tmp_path / "out" / "embeddings").exists()


def _bad_hdf5(path, **replace):
  """An ssl-layout file of 4 rows with some columns replaced."""
  columns = {"images": np.ones((4, 3, 16, 16), np.float32), "release": np.full(4, 9010),
             "brickid": np.full(4, 1), "objid": np.arange(4), "ra": np.linspace(1, 2, 4),
             "dec": np.linspace(3, 4, 4), **replace}
  with h5py.File(path, "w") as f:
    for k, v in columns.items():
      f.create_dataset(k, data=v)
  return path


@pytest.mark.parametrize("column, value", [
    ("ra", np.array([b"1.0", b"abc", b"2", b"3"])),
    ("images", np.array([b"a", b"b", b"c", b"d"])),
    ("objid", np.linspace(0, 1, 4)),
])
def test_hdf5_column_of_the_wrong_type_names_file_and_column(tmp_path, column, value):
  from lvm_jax.data.hdf5_source import SslLegacySurveySource
  path = _bad_hdf5(tmp_path / "bad.h5", **{column: value})
  with pytest.raises(ReaderError, match=rf"{path}: .*column '{column}'"):
    SslLegacySurveySource(path)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float16])
def test_non_float_flux_images_need_an_explicit_flag(tmp_path, dtype):
  from lvm_jax.data.hdf5_source import SslLegacySurveySource
  path = _bad_hdf5(tmp_path / "int.h5", images=np.full((4, 3, 16, 16), 7, dtype))
  with pytest.raises(ReaderError, match=rf"{path}: column 'images' holds {np.dtype(dtype)}"):
    SslLegacySurveySource(path)
  source = SslLegacySurveySource(path, allow_nonfloat=True)
  assert source[0]["image"].dtype == np.float32 and source[0]["image"][0, 0, 0] == 7


def test_duplicate_ids_are_refused_before_work(tmp_path, micro_checkpoint, tools):
  from lvm_jax.export import ExportSettings, export_survey
  data = tmp_path / "data"
  data.mkdir()
  tools.write_hdf5(data / "a.h5", n=3, objid=[0, 1, 2])
  tools.write_hdf5(data / "b.h5", n=3, objid=[5, 1, 6])
  with pytest.raises(ReaderError, match=r"1 duplicate ids \('9010_100_1' at records 1 and 4\)"):
    export_survey(micro_checkpoint, data, tmp_path / "out", ExportSettings(batch=8),
                  progress=False)
  assert not (tmp_path / "out" / "embeddings").exists()


def test_a_full_disk_names_the_file_and_keeps_nothing_half_written(tmp_path):
  from lvm_jax.export import manifest

  def full(tmp):
    tmp.write_bytes(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")
  target = tmp_path / "embeddings" / "part-00003.parquet"
  target.parent.mkdir()
  with pytest.raises(UserError, match=rf"cannot write {target}: No space left.*rerun the same"):
    manifest.atomic_write(target, full)
  assert list(target.parent.iterdir()) == []
