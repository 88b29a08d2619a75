"""Writes simulated stamps in the ssl-legacysurvey HDF5 layout (`lvm_jax.data.ssl_schema`) with h5py.

Datasets are created at full size and filled part by part, so a file of any length is written
with memory for one part only.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from lvm_jax.data import ssl_schema


class SurveyFile:
  """An open output file of `n` stamps; `write(offset, images, catalogue, truth)` fills rows.

  truth_columns: {name: (numpy dtype, fill value)} for the `truth/` group.
  """

  def __init__(self, path: str, n: int, truth_columns: dict, stamp: int = ssl_schema.STAMP_SIZE,
               attrs: dict | None = None):
    self.path = path
    self._file = h5py.File(path, "w")
    f = self._file
    f.create_dataset(ssl_schema.IMAGES, shape=(n, 3, stamp, stamp), dtype="float32",
                     chunks=(1, 3, stamp, stamp))  # one stamp per chunk: fast random reads
    for name, (shape, dtype) in ssl_schema.CATALOGUE_COLUMNS.items():
      f.create_dataset(name, shape=(n, *shape), dtype=dtype)
    group = f.create_group(ssl_schema.TRUTH_GROUP)
    for name, (dtype, _) in truth_columns.items():
      group.create_dataset(name, shape=(n,), dtype=dtype)
    f.attrs["simulated"] = True
    f.attrs["generator"] = "lvm_jax.sim"
    f.attrs["sim_config"] = json.dumps(attrs or {})

  def write(self, offset: int, images: np.ndarray, catalogue: dict, truth: dict) -> None:
    """images (m, 3, H, W) float32 nanomaggies; catalogue and truth {column: (m, ...) array}."""
    f, m = self._file, images.shape[0]
    f[ssl_schema.IMAGES][offset:offset + m] = images
    for name, (_, dtype) in ssl_schema.CATALOGUE_COLUMNS.items():
      f[name][offset:offset + m] = np.asarray(catalogue[name]).astype(dtype)
    group = f[ssl_schema.TRUTH_GROUP]
    for name in group:
      group[name][offset:offset + m] = truth[name]

  def close(self) -> None:
    self._file.close()

  def __enter__(self) -> SurveyFile:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
