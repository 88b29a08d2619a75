"""Thumbnails: the image source's record of an object as an in-memory PNG (base64 data URL).

Images are read from the configured source only, by object id, and never written to disk or
served from a static route: a request can only ever name an id of the catalogue.
"""

from __future__ import annotations

import base64
import collections
import pathlib
import threading
from typing import Any, Sequence

import cv2
import numpy as np

from lvm_jax.data.preprocess import display_rgb

# A grey square for objects the source does not hold.
_MISSING_SIZE = 64


def open_source(path: str | pathlib.Path):
  """The image source of `path`: an ssl HDF5 file or folder of them, or a FITS folder/file."""
  from lvm_jax.data.fits_cutout import FitsCutoutSource  # pylint: disable=g-import-not-at-top
  from lvm_jax.data.hdf5_source import SslLegacySurveySource  # pylint: disable=g-import-not-at-top
  from lvm_jax.ingest import originals  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  if originals.has_originals(path):  # an ingested JPEG/PNG set: show the original files
    return originals.OriginalImages(path)
  if path.is_dir():
    h5 = sorted(p for p in path.iterdir() if p.suffix in (".h5", ".hdf5"))
    return SslLegacySurveySource(h5) if h5 else FitsCutoutSource(path)
  if path.suffix in (".h5", ".hdf5"):
    return SslLegacySurveySource(path)
  return FitsCutoutSource(path)


def source_ids(source) -> list[str]:
  """Every record's id, in source order, without reading the images where possible."""
  # pylint: disable-next=g-import-not-at-top
  from lvm_jax.data.fits_cutout import FitsCutoutSource, cutout_id
  if isinstance(source, FitsCutoutSource):
    return [cutout_id(p) for p in source.paths]
  if hasattr(source, "ids"):  # ssl HDF5 (an ingested set's own ids), an ingest's originals
    return source.ids()
  return [str(source[i]["id"]) for i in range(len(source))]


def png_data_url(rgb: np.ndarray) -> str:
  """(H, W, 3) uint8 RGB -> "data:image/png;base64,..."."""
  ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
  if not ok:
    raise ValueError("PNG encoding failed")
  return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class Thumbnails:
  """Object id -> g, r, z colour composite PNG (`display_rgb`), with an LRU cache.

  Args:
    source: a random-access image source (records with `image` (H, W, 3) g, r, z nanomaggies).
    ids: (N,) catalogue ids to resolve against the source's record ids.
    cache_size: thumbnails kept in memory.
  """

  def __init__(self, source, ids: Sequence[Any] | None = None, cache_size: int = 2048):
    self.source = source
    self._index = {k: i for i, k in enumerate(source_ids(source))} if source is not None else {}
    self._cache: collections.OrderedDict[str, str] = collections.OrderedDict()
    self.cache_size = int(cache_size)
    self.missing = [] if ids is None else [str(i) for i in ids if str(i) not in self._index]
    self._lock = threading.Lock()  # browser sessions read from their own threads

  def has(self, object_id) -> bool:
    return str(object_id) in self._index

  def data_url(self, object_id) -> str:
    """The PNG data URL of `object_id` (a grey square when the source lacks it)."""
    with self._lock:
      return self._data_url(str(object_id))

  def _data_url(self, key: str) -> str:
    if key in self._cache:
      self._cache.move_to_end(key)
      return self._cache[key]
    if key in self._index:
      record = self.source[self._index[key]]
      rgb = record["image"] if record.get("display") else display_rgb(
          np.asarray(record["image"])[..., :3])
    else:
      rgb = np.full((_MISSING_SIZE, _MISSING_SIZE, 3), 96, np.uint8)
    url = png_data_url(rgb)
    self._cache[key] = url
    while len(self._cache) > self.cache_size:
      self._cache.popitem(last=False)
    return url
