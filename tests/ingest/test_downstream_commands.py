"""An ingested JPEG set works with export, search and the HITL app's thumbnails as it is."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from lvm_jax import cli
from lvm_jax.ingest import builder

GOOD = [f"g{i}" for i in range(8)]


@pytest.fixture(scope="session")
def ingested_jpegs(jpeg_set, tmp_path_factory):
  folder, csv = jpeg_set
  out = tmp_path_factory.mktemp("ingested") / "survey"
  builder.ingest(folder, csv, out, builder.IngestOptions(label_column="class_name"))
  return folder, out


def _checkpoint(root, tiny, image_kind):
  from lvm_jax import checkpoint
  from lvm_jax.data.preprocess import Preprocessing
  config, _, params = tiny
  meta = {"preprocessing": Preprocessing(mode="resize", out_size=64).to_dict()}
  if image_kind:
    meta["image_kind"] = image_kind
  checkpoint.save(root, 1, params=params, config={"model": config.to_dict()}, meta=meta)
  return root


@pytest.fixture(scope="session")
def rgb_export(ingested_jpegs, tiny, tmp_path_factory):
  from lvm_jax.export import ExportSettings, export_survey
  _, survey = ingested_jpegs
  root = tmp_path_factory.mktemp("ckpt")
  ckpt = _checkpoint(root / "rgb", tiny, "display_rgb")
  out = root / "export"
  settings = ExportSettings(batch=8, chunk_size=8, compute_dtype="float32", workers=1,
                            carry=("catalogue/class_name",))
  export_survey(ckpt, survey, out, settings, progress=False)
  return root, out


def test_export_keeps_ids_and_carries_labels(rgb_export):
  from lvm_jax.export import tables
  _, out = rgb_export
  table = tables.read_embeddings(out, columns=["id", "catalogue_class_name"]).to_pydict()
  ids = [str(v) for v in table["id"]]
  assert sorted(ids) == sorted(GOOD)
  labels = dict(zip(ids, (v.decode() if isinstance(v, bytes) else str(v)
                          for v in table["catalogue_class_name"])))
  assert labels == {f"g{i}": "ab"[i % 2] for i in range(8)}


def test_a_flux_model_refuses_display_rgb_unless_told(ingested_jpegs, tiny, tmp_path, rgb_export):
  from lvm_jax.data.galaxy10 import ImageKindError
  from lvm_jax.export import ExportSettings, export_survey
  _, survey = ingested_jpegs
  ckpt = _checkpoint(tmp_path / "flux", tiny, None)  # no kind recorded: a flux model
  settings = dict(batch=8, chunk_size=8, compute_dtype="float32", workers=1)
  with pytest.raises(ImageKindError, match="display_rgb"):
    export_survey(ckpt, survey, tmp_path / "refused", ExportSettings(**settings), progress=False)
  assert cli.main(["export", "--checkpoint", str(ckpt), "--data", str(survey), "--out",
                   str(tmp_path / "refused2"), "--no-progress", "--config", "export:cpu"]) != 0
  told = ExportSettings(**settings, allow_display_rgb=True)  # `--allow-kind-mismatch`
  assert export_survey(ckpt, survey, tmp_path / "told", told, progress=False)["rows"] == 8


def test_search_mosaic_and_hitl_thumbnails_show_the_images(ingested_jpegs, rgb_export, tmp_path,
                                                          capsys):
  from PIL import Image
  from lvm_jax.hitl.app import images
  from lvm_jax.ingest import originals
  folder, survey = ingested_jpegs
  _, out = rgb_export
  png = tmp_path / "n.png"
  assert cli.main(["search", "--embeddings", str(out), "--id", "g3", "-k", "3",
                   "--images", str(survey), "--png", str(png)]) == 0
  listed = [line.split()[1] for line in capsys.readouterr().out.splitlines()
            if line.strip()[:1].isdigit()]
  assert len(listed) == 3 and set(listed) <= set(GOOD) - {"g3"}  # neighbours by the CSV ids
  assert png.stat().st_size > 0
  from lvm_jax.hitl.app.data import AppConfig, AppData
  app = AppData(AppConfig(embeddings=out, images=survey))  # what `lvm-jax hitl` loads
  assert app.thumbnails.missing == [] and sorted(app.keys) == sorted(GOOD)
  assert isinstance(app.thumbnails.source, originals.OriginalImages)
  thumbs = images.Thumbnails(images.open_source(survey), GOOD + ["nope"])
  assert thumbs.missing == ["nope"] and thumbs.has("g4")
  data = base64.b64decode(thumbs.data_url("g4").split(",", 1)[1])
  shown = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
  np.testing.assert_array_equal(shown, np.asarray(Image.open(folder / "img" / "g4.jpg")))


def test_training_records_the_survey_image_kind(ingested_jpegs, tmp_path):
  import ml_collections
  from lvm_jax.data.hdf5_source import write_ssl_hdf5
  from lvm_jax.train import data as train_data
  _, survey = ingested_jpegs
  config = ml_collections.ConfigDict({"files": str(survey / "*.h5")})
  assert train_data.image_kind(config) == "display_rgb"
  images = np.random.default_rng(0).uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
  write_ssl_hdf5(tmp_path / "flux.h5", images, {"release": [1, 1], "brickid": [1, 1],
                                                "objid": [1, 2], "ra": [0.0, 0.1],
                                                "dec": [0.0, 0.0]}, npix=None)
  config.files = str(tmp_path / "*.h5")
  assert train_data.image_kind(config) == "flux"  # a survey without an ingest manifest
  both = ml_collections.ConfigDict({"files": [str(tmp_path / "*.h5"), str(survey / "*.h5")]})
  with pytest.raises(ValueError, match="mixes image kinds"):
    train_data.image_kind(both)


def test_pretraining_reads_only_the_named_split(ingested_jpegs, tmp_path):
  """`data.split`: the train and held-out sources hold only that split's galaxies."""
  import ml_collections
  from lvm_jax.ingest import splits
  from lvm_jax.train import data as train_data
  _, survey = ingested_jpegs
  config = ml_collections.ConfigDict(dict(files=str(survey / "*.h5"), class_column="",
                                          val_size=1, split_seed=0, split="train"))
  train, held_out = train_data.make_sources(config)
  wanted = set(splits.read_split(survey, "train"))
  seen = [str(train[i]["id"]) for i in range(len(train))] + [str(held_out[0]["id"])]
  assert sorted(seen) == sorted(wanted) and len(held_out) == 1
  everything, _ = train_data.make_sources(ml_collections.ConfigDict(dict(config, split="")))
  assert len(everything) > len(train)
  with pytest.raises(ValueError, match="no split 'nope'"):
    train_data.make_sources(ml_collections.ConfigDict(dict(config, split="nope")))
