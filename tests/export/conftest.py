"""A small survey (random galaxies plus planted bad images) and a tiny checkpoint, made once."""

from __future__ import annotations

import numpy as np
import pytest

N_GALAXIES = 44
STAMP = 72  # pixels; resized to the tiny model's 64
BAD = {5: "nonfinite", 17: "constant", 30: "all_zero"}  # row -> the reason it must be rejected
SPLIT = 24  # rows in the first of the two HDF5 files


def survey_images(n: int, seed: int = 0) -> np.ndarray:
  """(n, 3, STAMP, STAMP) float32: exponential blobs of random size and flux plus sky noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:STAMP, :STAMP] - (STAMP - 1) / 2
  r = np.hypot(x, y)
  scale = rng.uniform(2, 10, (n, 1, 1, 1))
  flux = rng.uniform(0.05, 2, (n, 3, 1, 1))
  images = flux * np.exp(-r / scale) + rng.normal(0, 0.005, (n, 3, STAMP, STAMP))
  images = images.astype(np.float32)
  images[5, 1, 10, 10] = np.nan
  images[17] = 0.25
  images[30] = 0.0
  return images


@pytest.fixture(scope="session")
def survey_dir(tmp_path_factory):
  """A folder of two ssl-layout HDF5 files (SPLIT and N - SPLIT rows) with z_phot_median."""
  from lvm_jax.data.hdf5_source import write_ssl_hdf5
  d = tmp_path_factory.mktemp("survey")
  images = survey_images(N_GALAXIES)
  rng = np.random.default_rng(1)
  n = N_GALAXIES
  catalogue = {"release": np.full(n, 9010), "brickid": np.arange(n) // 10 + 100,
               "objid": np.arange(n), "ra": 150 + rng.uniform(0, 0.5, n),
               "dec": 2 + rng.uniform(0, 0.5, n),
               "z_phot_median": rng.uniform(0, 1, n).astype(np.float32),
               "flux": rng.uniform(0, 5, (n, 3)).astype(np.float32)}
  for part, rows in (("a", slice(0, SPLIT)), ("b", slice(SPLIT, n))):
    write_ssl_hdf5(d / f"survey_{part}.h5", images[rows],
                   {k: v[rows] for k, v in catalogue.items()}, npix=None)
  return d


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory, tiny):
  """The `tiny` fixture's weights as a checkpoint whose meta asks for a whole-stamp resize."""
  from lvm_jax import checkpoint
  from lvm_jax.data.preprocess import Preprocessing
  config, _, params = tiny
  d = tmp_path_factory.mktemp("ckpt") / "tiny"
  checkpoint.save(d, 3, params=params, config={"model": config.to_dict()},
                  meta={"preprocessing": Preprocessing(mode="resize", out_size=64).to_dict()})
  return d


SETTINGS = dict(batch=8, chunk_size=16, compute_dtype="float32", workers=2)


@pytest.fixture(scope="session")
def spec():
  """The survey's constants for the tests (conftest modules are not importable here)."""
  return {"n": N_GALAXIES, "bad": dict(BAD), "split": SPLIT, "settings": dict(SETTINGS)}


@pytest.fixture(scope="session")
def export_8(tmp_path_factory, checkpoint_dir, survey_dir):
  """An uninterrupted export on all 8 devices, with carried columns and FITS/VOTable copies."""
  from lvm_jax.export import ExportSettings, export_survey
  out = tmp_path_factory.mktemp("export8")
  settings = ExportSettings(**SETTINGS, carry=("z_phot_median", "flux"),
                            formats=("fits", "votable"))
  summary = export_survey(checkpoint_dir, survey_dir, out, settings, progress=False)
  return out, summary


@pytest.fixture(scope="session")
def dask_cluster():
  """(LocalCluster, Client): one in-process Dask cluster for the HATS and LSDB tests."""
  from distributed import Client, LocalCluster
  with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                    dashboard_address=None) as cluster, Client(cluster) as client:
    yield cluster, client
