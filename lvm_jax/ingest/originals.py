"""The original image files of an ingested colour-composite set, for display (the HITL app).

An ingested `display_rgb` set records each stored galaxy's input file in `rows.parquet`
(`original_file`); `OriginalImages` reads those JPEG/PNGs at their full size. A file that has
moved since the ingest falls back to the stored stamp.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from lvm_jax.ingest import layout


def has_originals(path: str | os.PathLike) -> bool:
  """True for an ingested folder of display-RGB images (whose original files can be shown)."""
  return (pathlib.Path(path).is_dir() and layout.survey_image_kind(path) == "display_rgb"
          and (pathlib.Path(path) / layout.ROWS).is_file())


class OriginalImages:
  """Random access by stored order. Records: `image` (H, W, 3) uint8 RGB as in the original file,
  `display` = True (already a display image), `id`, `source_file`."""

  def __init__(self, folder: str | os.PathLike):
    import pyarrow.parquet as pq
    self.folder = pathlib.Path(folder)
    table = pq.read_table(self.folder / layout.ROWS, columns=["id", "original_file"])
    self._ids = [str(v) for v in table["id"].to_pylist()]
    self._files = table["original_file"].to_pylist()
    self._stamps = None

  def __len__(self) -> int:
    return len(self._ids)

  def ids(self) -> list[str]:
    return list(self._ids)

  def _stored(self, index: int) -> np.ndarray:
    if self._stamps is None:
      from lvm_jax.data.hdf5_source import SslLegacySurveySource
      self._stamps = SslLegacySurveySource(sorted(self.folder.glob("*.h5")), columns=())
    return np.clip(self._stamps[index]["image"], 0, 255).astype(np.uint8)

  def __getitem__(self, index: int) -> dict[str, Any]:
    from PIL import Image
    index = int(index)
    path = pathlib.Path(self._files[index])
    try:
      with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    except OSError:
      rgb = self._stored(index)
    return {"image": rgb, "display": True, "id": self._ids[index], "source_file": str(path)}
