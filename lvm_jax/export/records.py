"""Reading, validating and preprocessing the records of an export's source, before any work.

`check_text` refuses ids and paths that are not UTF-8 or not unique; `Preparer` reads record i,
validates it and preprocesses it as the checkpoint records; `carried_types` takes the Arrow
types of the carried catalogue columns from the first good record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from lvm_jax.data import galaxy10
from lvm_jax.data.pipeline import apply_preprocessing
from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.data.validate import BadImageError, UnreadableFileError, validate_image
from lvm_jax.errors import ReaderError
from lvm_jax.export import schema
from lvm_jax.export import sources


@dataclasses.dataclass
class Prepared:
  """One record after reading, validation and preprocessing (image None when rejected)."""

  row: dict[str, Any]
  image: np.ndarray | None = None
  reject: dict[str, Any] | None = None


class Preparer:
  """Reads record i of the source, validates it and preprocesses it as the checkpoint wants."""

  def __init__(self, source: sources.ExportSource, preprocessing: Preprocessing, fast: bool):
    self.source = source
    self.preprocessing = preprocessing
    self.passthrough = sources.input_preprocessing(source, preprocessing)
    self.fast = fast

  def __call__(self, index: int) -> Prepared:
    source_file, source_index = self.source.where(index)
    where = {"id": "", "source_file": source_file, "source_index": source_index}
    try:
      record = self.source.record(index)
      where = {"id": str(record["id"]), "source_file": str(record["source_file"]),
               "source_index": int(record["source_index"])}
      image = validate_image(record["image"], source=where["source_file"],
                             index=where["source_index"])
      scale = float(record.get("arcsec_per_pixel", 0.262)) if self.passthrough is None \
          else 0.262
      out, info = apply_preprocessing(self.passthrough or self.preprocessing, image,
                                      fast=self.fast, pixel_scale=scale)
    except (BadImageError, UnreadableFileError) as e:
      detail = str(e)
      if where["source_file"] not in detail:  # e.g. the crop's message names no file
        detail = f"{where['source_file']} [index {where['source_index']}]: {detail}"
      return Prepared(where, reject={**where, "reason": e.reason, "detail": detail})
    box, arcsec = info["box"], info["arcsec_per_pixel"]
    if self.passthrough is not None:  # pre-cropped: the geometry of the original crop
      box, arcsec = tuple(int(v) for v in record["box"]), float(record["arcsec_per_pixel"])
    row = {**where, "ra": float(record.get("ra", np.nan)), "dec": float(record.get("dec", np.nan)),
           "box": box, "arcsec_per_pixel": arcsec, "mask_flags": int(record["mask_flags"])}
    for name in self.source.carry:
      row[schema.column_name(name)] = record[name]
    return Prepared(row, image=out)


def check_image_kind(source: sources.ExportSource, meta: dict[str, Any], allow: bool) -> None:
  galaxy10.check_image_kind(source.image_kind, meta.get("image_kind", galaxy10.FLUX),
                            allow_display_rgb=allow)


def check_text(source: sources.ExportSource) -> None:
  """Ids and file names must be valid Unicode (stored as UTF-8) and unique; before any work.

  Raises ReaderError naming the file (and the index) of the first offending record.
  """
  try:
    str(source.path.resolve()).encode("utf-8")
  except UnicodeEncodeError as e:
    raise ReaderError(f"the data path {source.path!r} is not valid UTF-8 ({e.reason}); rename "
                      f"it") from e
  ids = source.ids()
  if ids is None:
    return
  files = getattr(source.source, "paths", [])
  for i, name in enumerate(ids):
    try:
      name.encode("utf-8")
    except UnicodeEncodeError as e:
      where = files[i] if source.kind == "fits" else source.path
      raise ReaderError(f"{where!r} [index {i}]: id {name!r} is not valid UTF-8; rename the "
                        f"file") from e
  seen: dict[str, int] = {}
  duplicates = []
  for i, name in enumerate(ids):
    if name in seen:
      duplicates.append((name, seen[name], i))
    else:
      seen[name] = i
  if duplicates:
    shown = "; ".join(f"{name!r} at records {a} and {b}" for name, a, b in duplicates[:5])
    raise ReaderError(f"{source.path}: {len(duplicates)} duplicate ids ({shown}); every "
                      f"exported id must be unique (search and labels key on it): remove the "
                      f"duplicate rows or files")


def carried_types(source: sources.ExportSource, preparer: Preparer) -> dict[str, pa.DataType]:
  """Arrow types of the carried columns, from the first good record."""
  if not source.carry:
    return {}
  for i in range(len(source)):
    prepared = preparer(i)
    if prepared.image is not None:
      names = [schema.column_name(c) for c in source.carry]
      return {name: schema.arrow_type(np.asarray([prepared.row[name]])) for name in names}
  raise ValueError(f"{source.path}: no valid image to take the carried columns' types from")
