"""Writes simulated stamps in the ssl-legacysurvey HDF5 layout through `lvm_jax.data.ssl_writer`.

The datasets are allocated once at full size and filled part by part, so a file of any length
is written with memory for one part only.
"""

from __future__ import annotations

import json

import numpy as np

from lvm_jax.data import ssl_schema, ssl_writer


class SurveyFile:
  """An open output file of `n` stamps; `write(offset, images, catalogue, truth)` fills rows.

  Parts come in order (`offset` is the number of rows written so far). truth_columns:
  {name: (numpy dtype, fill value)} for the `truth/` group.
  """

  def __init__(self, path: str, n: int, truth_columns: dict, stamp: int = ssl_schema.STAMP_SIZE,
               attrs: dict | None = None):
    self.path = path
    self._truth_names = tuple(truth_columns)
    self._writer = ssl_writer.SslShardWriter(
        path, npix=stamp, rows=n, extra_group=ssl_schema.TRUTH_GROUP,
        extra_dtypes={name: dtype for name, (dtype, _) in truth_columns.items()},
        attrs={"simulated": True, "generator": "lvm_jax.sim",
               "sim_config": json.dumps(attrs or {})})

  def write(self, offset: int, images: np.ndarray, catalogue: dict, truth: dict) -> None:
    """images (m, 3, H, W) float32 nanomaggies; catalogue and truth {column: (m, ...) array}."""
    if offset != self._writer.written:
      raise ValueError(f"{self.path}: part at row {offset}, expected row {self._writer.written}")
    self._writer.append(images, {name: catalogue[name] for name in ssl_schema.CATALOGUE_COLUMNS},
                        {name: truth[name] for name in self._truth_names}, channels_first=True)

  def close(self) -> None:
    self._writer.close()

  def __enter__(self) -> SurveyFile:
    return self

  def __exit__(self, exc_type, *exc) -> None:
    if exc_type is None:
      self.close()
    else:
      self._writer.abort()
