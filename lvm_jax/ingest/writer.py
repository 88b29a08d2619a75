"""Writes one shard of an ingested survey through the one ssl-layout writer
(`lvm_jax.data.ssl_writer`): the ssl-legacysurvey datasets, the catalogue's own `id` and a
`catalogue/` group of every CSV column (layout in `lvm_jax.ingest.layout`).

The ssl writer writes under a temporary name and renames, so a shard file that exists is complete.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping

import numpy as np

from lvm_jax.data import ssl_writer
from lvm_jax.ingest import layout


def stored_dtypes(columns: Mapping[str, np.ndarray]) -> dict[str, np.dtype]:
  """The dtype of each catalogue column in every shard (text widths from the whole catalogue)."""
  return {name: np.dtype(d) for name, d in ssl_writer.declared_dtypes(columns).items()}


def write_shard(path: str | os.PathLike, images: np.ndarray, *, ids: np.ndarray,
                rows: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                catalogue: Mapping[str, np.ndarray], dtypes: Mapping[str, np.dtype],
                compression: str = "lzf") -> pathlib.Path:
  """Writes n galaxies; returns the path.

  images: (n, 3, S, S) float32 (nanomaggies, or display RGB 0-255); ids: (n,) str; rows: (n,)
  int CSV rows (stored as `objid`, with `release` = `brickid` = 0); ra, dec: (n,) float64 deg;
  catalogue: {column: (n,) array}, stored with `dtypes` (see `stored_dtypes`).
  """
  path = pathlib.Path(path)
  n = images.shape[0]
  if n == 0:
    raise ValueError(f"{path}: a shard needs at least one galaxy")
  rows = np.asarray(rows, np.int64)
  table = {"objid": rows, "release": np.zeros(n, np.int64), "brickid": np.zeros(n, np.int64),
           "ra": np.asarray(ra, np.float64), "dec": np.asarray(dec, np.float64)}
  return ssl_writer.write_shard(path, images, table, catalogue, channels_first=True, npix=None,
                                extra_group=layout.CATALOGUE_GROUP, extra_dtypes=dtypes,
                                attrs={"generator": "lvm_jax.ingest"}, ids=np.asarray(ids),
                                compression=compression)
