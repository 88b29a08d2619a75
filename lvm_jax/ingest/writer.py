"""Writes one shard of an ingested survey: the ssl-legacysurvey datasets plus the catalogue's own
`id` and a `catalogue/` group (layout in `lvm_jax.ingest.layout`).

The file is written under a temporary name and renamed, so a shard file that exists is complete.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping

import h5py
import numpy as np

from lvm_jax.data import ssl_schema
from lvm_jax.ingest import layout

COMPRESSIONS = ("lzf", "gzip", "none")


def text_dtype(values: np.ndarray) -> np.dtype:
  """The fixed-width bytes dtype that holds every value of a str array as UTF-8 (at least S1)."""
  width = max((len(str(v).encode("utf-8")) for v in values), default=1)
  return np.dtype(f"S{max(width, 1)}")


def stored_dtypes(columns: Mapping[str, np.ndarray]) -> dict[str, np.dtype]:
  """The dtype of each catalogue column in every shard (text widths from the whole catalogue)."""
  return {name: text_dtype(v) if v.dtype.kind in "US" else v.dtype
          for name, v in columns.items()}


def _stored(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
  if dtype.kind == "S":
    return np.array([str(v).encode("utf-8") for v in values], dtype=dtype)
  return np.asarray(values).astype(dtype)


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
  filters = {} if compression == "none" else {"compression": compression, "shuffle": True}
  tmp = path.with_name(path.name + ".tmp")
  with h5py.File(tmp, "w", libver="latest") as f:
    f.create_dataset(ssl_schema.IMAGES, data=images.astype(np.float32, copy=False),
                     chunks=(1, *images.shape[1:]), fletcher32=True, **filters)
    rows = np.asarray(rows, np.int64)
    f.create_dataset("objid", data=rows)
    f.create_dataset("release", data=np.zeros(n, np.int64))
    f.create_dataset("brickid", data=np.zeros(n, np.int64))
    f.create_dataset("ra", data=np.asarray(ra, np.float64))
    f.create_dataset("dec", data=np.asarray(dec, np.float64))
    f.create_dataset(ssl_schema.ROW_ID, data=_stored(ids, text_dtype(ids)))
    group = f.create_group(layout.CATALOGUE_GROUP)
    for name, values in catalogue.items():
      group.create_dataset(name, data=_stored(values, dtypes[name]))
    f.attrs["generator"] = "lvm_jax.ingest"
  os.replace(tmp, path)
  return path
