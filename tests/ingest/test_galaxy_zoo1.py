"""Ingest of 50 real Galaxy Zoo 1 JPEGs (../shared): ids, labels, image kind, splits."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest

from lvm_jax import cli, shared_paths
from lvm_jax.data.hdf5_source import SslLegacySurveySource
from lvm_jax.ingest import catalogue, layout

N = 50


@pytest.fixture(scope="module")
def gz1_dir():
  shared = shared_paths.shared_dir()
  folder = None if shared is None else shared / "data" / "galaxy_zoo1_sdss"
  if folder is None or not (folder / "labels.csv").is_file():
    pytest.skip("../shared/data/galaxy_zoo1_sdss is absent (a user's clone); CI always has it")
  return folder


@pytest.mark.needs_shared
def test_ingest_fifty_galaxy_zoo1_jpegs(gz1_dir, tmp_path, capsys):
  labels = catalogue.write_head(gz1_dir / "labels.csv", N, tmp_path / "labels.csv")
  with labels.open(newline="") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == N
  survey = tmp_path / "gz1"
  assert cli.main(["ingest", str(gz1_dir), "--catalogue", str(labels), "--out", str(survey),
                   "--id-column", "objid", "--label-column", "class_name", "--stamp", "64",
                   "--pretrain", "0.4", "--splits", "train=0.4,val=0.1,test=0.1",
                   "--workers", "2", "--no-progress"]) == 0
  printed = capsys.readouterr().out
  assert f"ingested {N} of {N} catalogue rows (display_rgb, 64 px)" in printed
  assert "image files without a CSV row" in printed  # the rest of the folder
  source = SslLegacySurveySource(sorted(survey.glob("*.h5")), columns=("catalogue/class_name",))
  assert source.ids() == [r["objid"] for r in rows]  # 18-digit ids kept exactly
  record = source[7]
  assert record["catalogue/class_name"].decode() == rows[7]["class_name"]
  assert record["image"].shape == (64, 64, 3)
  assert 0 <= record["image"].min() < record["image"].max() <= 255
  assert layout.survey_image_kind(survey) == "display_rgb"
  split_ids = {name: set(pq.read_table(survey / "rows.parquet").column("id").to_pylist()) & set(
      r["id"] for r in csv.DictReader((survey / "splits" / f"{name}.csv").open()))
      for name in ("pretrain", "train", "val", "test")}
  assert sum(len(v) for v in split_ids.values()) == N
  assert not split_ids["pretrain"] & (split_ids["train"] | split_ids["val"] | split_ids["test"])
  rejects = pq.read_table(survey / layout.REJECTS).to_pydict()
  assert set(rejects["reason"]) == {"no_catalogue_row"}
  assert len(rejects["reason"]) == len(list((gz1_dir / "images").iterdir())) - N
