"""Pre-cropped ArrayRecord datasets: written by tfds without TensorFlow, read back two ways."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from lvm_jax.data import preprocess
from lvm_jax.data.arrayrecord import PrecroppedSource, write_precropped
from lvm_jax.data.hdf5_source import SslLegacySurveySource, write_ssl_hdf5
from lvm_jax.data.pipeline import apply_preprocessing, make_pipeline
from lvm_jax.data.validate import Quarantine

N = 12
PREP = preprocess.Preprocessing(mode="paper", out_size=32)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  d = tmp_path_factory.mktemp("ar")
  rng = np.random.default_rng(0)
  y, x = np.mgrid[:64, :64] - 31.5
  blob = np.exp(-np.hypot(x, y) / 5.0)
  images = (blob[None, None] + rng.normal(0, 0.01, (N, 3, 64, 64))).astype(np.float32)
  images[4, 0, 0, 0] = np.inf
  cat = {"ra": np.linspace(1, 2, N), "dec": np.linspace(-3, -2, N), "release": np.full(N, 9010),
         "brickid": np.full(N, 7), "objid": np.arange(N)}
  source = SslLegacySurveySource(write_ssl_hdf5(d / "g.h5", images, cat, npix=None))
  quarantine = Quarantine()
  path = write_precropped(source, PREP, d / "tfds", name="paper32", quarantine=quarantine)
  return source, path, quarantine


def test_tensorflow_is_absent():
  assert importlib.util.find_spec("tensorflow") is None
  with pytest.raises(ImportError):
    import tensorflow  # noqa: F401


@pytest.mark.parametrize("reader", ["tfds", "grain"])
def test_round_trip(written, reader):
  source, path, quarantine = written
  assert len(quarantine) == 1 and quarantine.rows[0]["source_index"] == 4
  stored = PrecroppedSource(path.parent.parent.parent, name="paper32", reader=reader)
  assert stored.preprocessing == PREP
  assert len(stored) == N - 1
  kept = [i for i in range(N) if i != 4]
  for j in (0, 3, 4, N - 2):
    original = source[kept[j]]
    expected, info = apply_preprocessing(PREP, original["image"])
    record = stored[j]
    np.testing.assert_array_equal(record["image"], expected)
    assert record["id"] == original["id"] and record["source_index"] == kept[j]
    assert record["ra"] == original["ra"] and record["dec"] == original["dec"]
    assert tuple(record["box"]) == info["box"]
    assert record["arcsec_per_pixel"] == pytest.approx(info["arcsec_per_pixel"])
    assert record["source_file"] == original["source_file"]
  assert len(stored.files()) >= 1


def test_precropped_source_feeds_the_pipeline(written):
  _, path, _ = written
  stored = pickle.loads(pickle.dumps(PrecroppedSource(path, reader="grain")))
  pipe = make_pipeline(stored, preprocessing=stored.passthrough_preprocessing(), augment=False,
                       global_batch_size=4, seed=0, shuffle=False, process_index=0,
                       process_count=1)
  batch = pipe[0]
  np.testing.assert_allclose(batch["image"][1], stored[1]["image"], atol=1e-6)
  np.testing.assert_allclose(batch["arcsec_per_pixel"][1], stored[1]["arcsec_per_pixel"])


def test_existing_dataset_is_reused_or_refused(written):
  source, path, _ = written
  data_dir = path.parent.parent.parent
  assert write_precropped(source, PREP, data_dir, name="paper32") == path
  with pytest.raises(ValueError, match="overwrite"):
    write_precropped(source, preprocess.Preprocessing(mode="paper", out_size=16), data_dir,
                     name="paper32")
