"""A small export (Parquet in the export schema) and a matching ssl HDF5 image source."""

from __future__ import annotations

import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_jax.data.hdf5_source import write_ssl_hdf5
from lvm_jax.export import schema

N, DIM = 300, 32
# A small, quick model (same code paths as the paper's 2048 units).
SMALL = dict(hidden=64, fast_dims=16, steps=30, per_round=10)


def make_catalogue(n: int = N, seed: int = 0, duplicates: int = 0):
  """ids, (n,) ra, dec deg, (n, DIM) embeddings with a ~10% cluster, (n,) truth.

  The last `duplicates` rows sit 0.5 arcsec from rows 0, 1, ... (the same objects twice).
  """
  rng = np.random.default_rng(seed)
  release, brick, objid = np.full(n, 10), 1000 + np.arange(n) // 100, np.arange(n)
  ids = [f"{a}_{b}_{c}" for a, b, c in zip(release, brick, objid)]
  ra, dec = rng.uniform(150, 151, n), rng.uniform(2, 3, n)
  for k in range(duplicates):
    ra[n - duplicates + k] = ra[k] + 0.5 / 3600 / np.cos(np.radians(dec[k]))
    dec[n - duplicates + k] = dec[k]
  truth = rng.random(n) < 0.1
  emb = rng.normal(0, 1, (n, DIM)).astype(np.float32)
  emb[truth, :4] += 3.0
  return dict(ids=ids, ra=ra, dec=dec, embeddings=emb, truth=truth, release=release,
              brickid=brick, objid=objid)


def write_export(path: pathlib.Path, cat) -> pathlib.Path:
  """A one-part export directory `path` (export schema columns, plus `truth`)."""
  n = len(cat["ids"])
  t = pa.table({
      "id": pa.array(cat["ids"], pa.string()),
      "source_file": pa.array(["survey.h5"] * n, pa.string()),
      "source_index": pa.array(np.arange(n), pa.int64()),
      "ra": pa.array(cat["ra"], pa.float64()), "dec": pa.array(cat["dec"], pa.float64()),
      "box": schema.fixed_list(np.tile([0, 0, 152, 152], (n, 1)).astype(np.int32), pa.int32()),
      "arcsec_per_pixel": pa.array(np.full(n, 0.262, np.float32)),
      "mask_flags": pa.array(np.zeros(n, np.int64)),
      "truth": pa.array(cat["truth"].astype(np.int64)),
      "embedding": schema.fixed_list(cat["embeddings"], pa.float32()),
  })
  parts = path / schema.PARTS_DIR
  parts.mkdir(parents=True, exist_ok=True)
  pq.write_table(t, parts / "part-00000.parquet")
  return path


def write_images(path: pathlib.Path, cat, npix: int = 152) -> pathlib.Path:
  """Random positive g, r, z stamps (nanomaggies) for every object of `cat`."""
  n = len(cat["ids"])
  rng = np.random.default_rng(1)
  images = rng.uniform(0.001, 0.05, (n, 3, npix, npix)).astype(np.float32)
  return write_ssl_hdf5(path, images, {"release": cat["release"], "brickid": cat["brickid"],
                                       "objid": cat["objid"], "ra": cat["ra"],
                                       "dec": cat["dec"]}, npix=None)


@pytest.fixture(scope="session")
def survey(tmp_path_factory):
  """(export dir, HDF5 path, catalogue dict) of 300 objects with 152 px stamps."""
  root = tmp_path_factory.mktemp("hitl_app")
  cat = make_catalogue()
  return write_export(root / "export", cat), write_images(root / "survey.h5", cat), cat


@pytest.fixture(scope="session")
def small_survey(tmp_path_factory):
  """(export dir, HDF5 path, catalogue) of 60 objects, 3 near-duplicate pairs, 16 px stamps."""
  root = tmp_path_factory.mktemp("hitl_app_small")
  cat = make_catalogue(60, seed=2, duplicates=3)
  return write_export(root / "export", cat), write_images(root / "s.h5", cat, 16), cat
