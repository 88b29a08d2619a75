"""Ingest of a FITS folder and of a JPEG folder: stored rows, quarantine, unmatched files."""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_jax.data.hdf5_source import SslLegacySurveySource
from lvm_jax.errors import UserError
from lvm_jax.ingest import builder, layout

GOOD = [f"g{i}" for i in range(8)]


def _ingest(folder, csv, out, **kw):
  options = builder.IngestOptions(label_column="class_name", shard_size=4, **kw)
  return builder.ingest(folder, csv, out, options)


def _check_common(summary, out, bad_reason, suffix):
  assert summary["stored"] == 8 and summary["catalogue_rows"] == 10
  assert summary["missing_ids"] == ["gone"]
  assert summary["unlisted_files"] == [f"img/extra.{suffix}"]
  rejects = pq.read_table(out / layout.REJECTS).to_pylist()
  by_id = {r["id"]: r for r in rejects}
  assert by_id["bad"]["reason"] == bad_reason and "bad." in by_id["bad"]["file"]
  assert by_id["bad"]["row"] == 3 and by_id["bad"]["detail"]
  assert by_id["gone"]["reason"] == "missing_file"
  assert by_id[""]["reason"] == "no_catalogue_row"
  source = SslLegacySurveySource(sorted(out.glob("*.h5")), columns=("ra", "catalogue/mag"))
  assert source.ids() == GOOD  # the catalogue's own ids, in CSV order
  record = source[5]
  assert record["id"] == "g5" and record["image"].shape == (48, 48, 3)
  assert record["catalogue/mag"] == pytest.approx(22.5)
  rows = pq.read_table(out / layout.ROWS).to_pydict()
  assert rows["id"] == GOOD and rows["row"] == [0, 1, 2, 4, 5, 6, 7, 8]
  manifest = layout.read_manifest(out)
  assert manifest["complete"] and manifest["provenance"]["git_sha"]
  assert manifest["provenance"]["seed"] == 0
  return source, rows, manifest


def test_fits_folder(fits_set, tmp_path):
  folder, csv = fits_set
  out = tmp_path / "survey"
  summary = _ingest(folder, csv, out)
  source, _, manifest = _check_common(summary, out, "nonfinite", "fits")
  assert manifest["image_kind"] == "flux" and layout.survey_image_kind(out) == "flux"
  # The CSV's ra wins over the header's; the flux is stored as read.
  assert source[0]["ra"] == pytest.approx(150.0)
  from lvm_jax.data import fits_cutout
  first = fits_cutout.read_fits_cutout(folder / "img" / "g0.fits").image
  np.testing.assert_array_equal(source[0]["image"], first)
  with h5py.File(sorted(out.glob("*.h5"))[0]) as f:
    assert f["catalogue/class_name"][0] == b"a" and f["images"].dtype == np.float32


def test_jpeg_folder(jpeg_set, tmp_path):
  folder, csv = jpeg_set
  out = tmp_path / "survey"
  summary = _ingest(folder, csv, out)
  source, rows, manifest = _check_common(summary, out, "unreadable", "jpg")
  assert manifest["image_kind"] == "display_rgb"
  from PIL import Image
  original = np.asarray(Image.open(folder / "img" / "g2.jpg"), np.float32)
  np.testing.assert_array_equal(source[2]["image"], original)  # R, G, B 0-255, unchanged
  assert rows["original_file"][2] == str(folder.resolve() / "img" / "g2.jpg")


def _odd_set(jpeg_set, root):
  """The JPEG set with `bad` all zero, `gone` a one-band PNG, `g7` 60 x 40 px, `g6` constant."""
  from PIL import Image
  folder, csv = jpeg_set
  (root / "img").mkdir(parents=True)
  for p in (folder / "img").glob("g*.jpg"):
    (root / "img" / p.name).write_bytes(p.read_bytes())
  Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(root / "img" / "bad.jpg")
  gray = np.random.default_rng(0).integers(0, 255, (48, 48), np.uint8)
  Image.fromarray(gray).save(root / "img" / "gone.png")
  Image.fromarray(np.full((48, 48, 3), 77, np.uint8)).save(root / "img" / "g6.png")
  Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 40, 3), np.uint8)).save(
      root / "img" / "g7.jpg")
  text = csv.read_text().replace("img/gone.jpg", "img/gone.png").replace("img/g6.jpg",
                                                                          "img/g6.png")
  (root / "img" / "g6.jpg").unlink()
  (root / "labels.csv").write_text(text)
  return root


def test_odd_images_are_quarantined_with_reasons(jpeg_set, tmp_path):
  root = _odd_set(jpeg_set, tmp_path / "odd")
  summary = _ingest(root, root / "labels.csv", tmp_path / "native")
  assert summary["reasons"] == {"all_zero": 1, "band_count": 1, "constant": 1, "shape": 1}
  assert summary["stored"] == 6 and summary["missing_ids"] == [] and summary["stamp"] == 48
  # With --stamp every image is centre-cropped and resized, so the 60 x 40 one is kept.
  resized = _ingest(root, root / "labels.csv", tmp_path / "resized", stamp=32)
  assert resized["stored"] == 7 and "shape" not in resized["reasons"]
  source = SslLegacySurveySource(sorted((tmp_path / "resized").glob("*.h5")))
  assert source[0]["image"].shape == (32, 32, 3) and "g7" in source.ids()


def test_bad_catalogues_are_refused(jpeg_set, tmp_path):
  folder, csv = jpeg_set
  dup = tmp_path / "dup.csv"
  dup.write_text("id,file\nx,img/g0.jpg\nx,img/g1.jpg\n")
  with pytest.raises(UserError, match="duplicate ids.*'x' at rows 1 and 2"):
    builder.ingest(folder, dup, tmp_path / "a", builder.IngestOptions())
  with pytest.raises(UserError, match="no column 'class_name'"):
    builder.ingest(folder, dup, tmp_path / "b", builder.IngestOptions(label_column="class_name"))
  with pytest.raises(UserError, match="no column 'objid'"):
    builder.ingest(folder, csv, tmp_path / "c", builder.IngestOptions(id_column="objid"))
  mixed = tmp_path / "mixed.csv"
  mixed.write_text("id,file\nx,img/g0.jpg\ny,img/g1.fits\n")
  with pytest.raises(UserError, match="mixes FITS and JPEG"):
    builder.ingest(folder, mixed, tmp_path / "d", builder.IngestOptions())


def test_other_options_need_overwrite(jpeg_set, tmp_path):
  folder, csv = jpeg_set
  out = tmp_path / "survey"
  _ingest(folder, csv, out)
  with pytest.raises(UserError, match="--overwrite"):
    _ingest(folder, csv, out, seed=1)
  assert _ingest(folder, csv, out, seed=1, overwrite=True)["stored"] == 8
  assert layout.read_manifest(out)["fingerprint"]["seed"] == 1


def test_cli_summarises_and_errors_in_one_line(jpeg_set, tmp_path, capsys):
  from lvm_jax import cli
  folder, csv = jpeg_set
  assert cli.main(["ingest", str(folder), "--catalogue", str(csv), "--out", str(tmp_path / "s"),
                   "--label-column", "class_name", "--no-progress"]) == 0
  printed = capsys.readouterr().out
  assert "ingested 8 of 10 catalogue rows (display_rgb, 48 px)" in printed
  assert "1 CSV ids without an image file: gone" in printed
  assert "1 image files without a CSV row: img/extra.jpg" in printed
  assert "missing_file 1" in printed and "unreadable 1" in printed
  dup = tmp_path / "dup.csv"
  dup.write_text("id,file\nx,img/g0.jpg\nx,img/g1.jpg\n")
  assert cli.main(["ingest", str(folder), "--catalogue", str(dup), "--out",
                   str(tmp_path / "t")]) != 0
  error = capsys.readouterr().err.strip()
  assert error.startswith("lvm-jax ingest: error:") and "duplicate ids" in error
  assert len(error.splitlines()) == 1


def test_odd_fits_files_are_quarantined(fits_set, make_cutout, make_galaxy, tmp_path):
  from astropy.io import fits
  folder, csv = fits_set
  cube = np.moveaxis(make_galaxy(48), -1, 0)
  make_cutout(folder / "img" / "g1.fits", {"g": cube[0], "r": cube[1]})  # two bands only
  make_cutout(folder / "img" / "g2.fits", dict(zip("grz", np.moveaxis(make_galaxy(8), -1, 0))))
  fits.PrimaryHDU(np.ones((2, 3, 8, 8), np.float32)).writeto(folder / "img" / "g4.fits",
                                                               overwrite=True)  # 4-D
  (folder / "img" / "g5.fits").write_bytes((folder / "img" / "g0.fits").read_bytes()[:4000])
  summary = _ingest(folder, csv, tmp_path / "survey", min_size=16)
  rejects = {r["id"]: r["reason"] for r in pq.read_table(tmp_path / "survey" / layout.REJECTS)
             .to_pylist() if r["id"]}
  assert rejects == {"g1": "missing_band", "g2": "too_small", "g4": "unreadable",
                     "g5": "unreadable", "bad": "nonfinite", "gone": "missing_file"}
  assert summary["stored"] == 4


def test_the_app_falls_back_to_the_stored_stamp_when_an_original_moved(jpeg_set, tmp_path):
  import shutil
  from lvm_jax.ingest import originals
  folder, csv = jpeg_set
  moved = tmp_path / "moved"
  shutil.copytree(folder, moved)
  _ingest(moved, moved / "labels.csv", tmp_path / "survey")
  images = originals.OriginalImages(tmp_path / "survey")
  before = images[1]["image"]
  (moved / "img" / "g1.jpg").unlink()
  after = images[1]["image"]
  assert before.dtype == after.dtype == np.uint8 and after.shape == before.shape
  np.testing.assert_array_equal(after, before)  # the stored stamp is the unresized original
