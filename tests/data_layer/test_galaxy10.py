"""Galaxy10 DECaLS reader and the display-RGB guard."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from lvm_jax.data import preprocess
from lvm_jax.data.galaxy10 import (CLASS_NAMES, Galaxy10DecalsSource, ImageKindError,
                                   check_image_kind, write_galaxy10)
from lvm_jax.data.pipeline import make_pipeline


@pytest.fixture(scope="module")
def galaxy10_file(tmp_path_factory):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
  path = tmp_path_factory.mktemp("g10") / "Galaxy10_DECals.h5"
  return write_galaxy10(path, images, labels=[0, 1, 2, 5, 9, 5], ra=np.arange(6.0),
                        dec=-np.arange(6.0), redshift=np.linspace(0.01, 0.1, 6)), images


def test_records(galaxy10_file):
  path, images = galaxy10_file
  source = pickle.loads(pickle.dumps(Galaxy10DecalsSource(path)))
  assert len(source) == 6 and len(CLASS_NAMES) == 10
  record = source[3]
  np.testing.assert_array_equal(record["image"], images[3])
  assert record["kind"] == "display_rgb"
  assert record["label"] == 5 and record["class_name"] == "Barred Spiral"
  assert record["ra"] == 3.0 and record["dec"] == -3.0
  assert record["arcsec_per_pixel"] == pytest.approx(0.262)
  assert source.class_counts()["Barred Spiral"] == 2


def test_missing_dataset_is_named(tmp_path, galaxy10_file):
  import h5py
  path = tmp_path / "partial.h5"
  with h5py.File(path, "w") as f:
    f["images"] = galaxy10_file[1]
  with pytest.raises(KeyError, match="ans"):
    Galaxy10DecalsSource(path)


def test_check_image_kind():
  check_image_kind("flux")
  check_image_kind("display_rgb", allow_display_rgb=True)
  with pytest.raises(ImageKindError, match="allow_display_rgb"):
    check_image_kind("display_rgb")
  with pytest.raises(ValueError, match="unknown image kind"):
    check_image_kind("jpeg")


def test_pipeline_refuses_display_rgb_unless_allowed(galaxy10_file):
  source = Galaxy10DecalsSource(galaxy10_file[0])
  kwargs = {"preprocessing": preprocess.Preprocessing(mode="resize", out_size=16),
            "global_batch_size": 2, "seed": 0, "process_index": 0, "process_count": 1}
  with pytest.raises(ImageKindError):
    make_pipeline(source, **kwargs)[0]
  batch = make_pipeline(source, allow_display_rgb=True, **kwargs)[0]
  assert batch["image"].shape == (2, 16, 16, 3) and batch["valid"].all()
