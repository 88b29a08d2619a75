"""The ingest's input catalogue: a CSV with an id column, a file column (relative to the image
folder), optional ra/dec (ICRS degrees) and any other columns, which are kept.

Ids and file names are read as text whatever they look like (an SDSS objid stays exact); other
columns keep the types pyarrow infers (integers with empty cells become float64 with NaN).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
from typing import Sequence

import numpy as np

from lvm_jax.errors import UserError

FITS_SUFFIXES = (".fits", ".fits.gz", ".fits.fz", ".fit")
RGB_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_SUFFIXES = FITS_SUFFIXES + RGB_SUFFIXES


class CatalogueError(UserError, ValueError):
  """The CSV cannot be ingested as it is (a missing column, a duplicate or empty id)."""


@dataclasses.dataclass
class Catalogue:
  """N catalogue rows in CSV order.

  ids: (N,) str; files: (N,) str, relative to the image folder; columns: every CSV column as an
  (N,) array (text as str, numbers as int64/float64/bool); ra, dec: (N,) float64 deg (NaN unknown).
  """

  path: pathlib.Path
  ids: np.ndarray
  files: np.ndarray
  columns: dict[str, np.ndarray]
  ra: np.ndarray
  dec: np.ndarray

  def __len__(self) -> int:
    return len(self.ids)


def image_kind_of(name: str) -> str:
  """'flux' for a FITS file name, 'display_rgb' for JPEG/PNG; CatalogueError otherwise."""
  lower = name.lower()
  if lower.endswith(FITS_SUFFIXES):
    return "flux"
  if lower.endswith(RGB_SUFFIXES):
    return "display_rgb"
  raise CatalogueError(f"{name!r}: not a FITS, JPEG or PNG file name (suffixes "
                       f"{', '.join(IMAGE_SUFFIXES)})")


def _as_numpy(column) -> np.ndarray:
  import pyarrow as pa
  if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
    return np.asarray(column.fill_null("").to_pylist(), dtype=str)
  if pa.types.is_integer(column.type) and column.null_count:
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)
  if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
    return np.asarray(column.cast(pa.string()).fill_null("").to_pylist(), dtype=str)
  if pa.types.is_null(column.type):
    return np.full(len(column), np.nan)
  return column.to_numpy(zero_copy_only=False)


def _coordinate(table, name: str | None, path) -> np.ndarray:
  n = table.num_rows
  if name is None or name not in table.column_names:
    return np.full(n, np.nan)
  values = _as_numpy(table[name].combine_chunks())
  if values.dtype.kind not in "fiu":
    raise CatalogueError(f"{path}: column {name!r} must be numeric degrees, it holds "
                         f"{values.dtype} (e.g. {values[0]!r})")
  return values.astype(np.float64)


def read_catalogue(path: str | os.PathLike, *, id_column: str = "id", file_column: str = "file",
                   ra_column: str | None = "ra", dec_column: str | None = "dec",
                   required: Sequence[str] = ()) -> Catalogue:
  """Reads and checks the CSV.

  Raises CatalogueError naming the file (and rows) for: a missing id/file/`required` column,
  an empty id or file cell, a duplicate id, a non-numeric ra/dec column.
  """
  import pyarrow as pa
  from pyarrow import csv as pa_csv
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(path)
  try:
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        column_types={id_column: pa.string(), file_column: pa.string()}))
  except pa.ArrowInvalid as e:
    raise CatalogueError(f"{path}: not a readable CSV: {e}") from e
  for name in (id_column, file_column, *required):
    if name not in table.column_names:
      raise CatalogueError(f"{path}: no column {name!r} (columns: {', '.join(table.column_names)})"
                           f"; name it with --id-column / --file-column / --label-column")
  columns = {name: _as_numpy(table[name].combine_chunks()) for name in table.column_names}
  ids, files = columns[id_column], columns[file_column]
  for what, values in (("id", ids), ("file", files)):
    empty = np.flatnonzero(np.char.str_len(values) == 0) if len(values) else []
    if len(empty):
      raise CatalogueError(f"{path}: {len(empty)} rows with an empty {what} (CSV data rows "
                           f"{', '.join(str(i + 1) for i in empty[:5])})")
  order = np.argsort(ids, kind="stable")
  same = np.flatnonzero(ids[order][1:] == ids[order][:-1]) if len(ids) > 1 else []
  if len(same):
    shown = "; ".join(f"{str(ids[order][i])!r} at rows {order[i] + 1} and {order[i + 1] + 1}"
                      for i in same[:5])
    raise CatalogueError(f"{path}: {len(same)} duplicate ids ({shown}); every id must be unique")
  return Catalogue(path=path, ids=ids, files=files, columns=columns,
                   ra=_coordinate(table, ra_column, path), dec=_coordinate(table, dec_column, path))


def unlisted_files(folder: str | os.PathLike, listed: Sequence[str]) -> list[str]:
  """Image files under `folder` (recursively, paths relative to it, sorted) that no row names."""
  folder = pathlib.Path(folder)
  named = {os.path.normpath(f) for f in listed}
  out = []
  for root, _, names in os.walk(folder):
    for name in names:
      if name.lower().endswith(IMAGE_SUFFIXES):
        rel = os.path.normpath(os.path.relpath(os.path.join(root, name), folder))
        if rel not in named:
          out.append(rel)
  return sorted(out)


def write_head(path: str | os.PathLike, n: int, out: str | os.PathLike) -> pathlib.Path:
  """Writes the header and first `n` rows of the CSV `path` to `out` (a file); returns `out`.
  A subset for trying a command on a few galaxies of a large set."""
  with open(path, newline="") as f:
    reader = csv.reader(f)
    rows = [row for _, row in zip(range(n + 1), reader)]
  out = pathlib.Path(out)
  with out.open("w", newline="") as f:
    csv.writer(f).writerows(rows)
  return out
