"""The one writer of the ssl-legacysurvey HDF5 layout (`lvm_jax.data.ssl_schema`), with its checks.

A shard is written chunk by chunk, so a file of any length needs memory for one chunk only:

    with SslShardWriter("out/images_npix152_000000000_000001000.h5") as shard:
      for images, catalogue, extra in chunks:   # images (m, H, W, 3) float32 nanomaggies
        shard.append(images, catalogue, extra)

`catalogue` holds columns of `ssl_schema.CATALOGUE_COLUMNS` (`release`, `brickid`, `objid`,
`ra`, `dec` required; the others optional), each (m, ...) of the schema's per-galaxy shape and
a dtype castable to the schema's ("same_kind"). `extra` holds any other (m, ...) columns
(numbers, booleans, str or bytes), written under the group `extra_group` (`truth/` by
default, as the simulator does) and read back as `"<group>/<name>"` columns by
`lvm_jax.data.hdf5_source.SslLegacySurveySource`. Every chunk carries the same columns as the
first. Text is stored as UTF-8: fixed-width bytes where `extra_dtypes` declares `"S<width>"`,
else variable-length strings.

The shard is written to `<path>.partial` and renamed to `path` by `close()`; a `with` block
that raises removes the partial file instead, so a shard on disk is always complete. Every
dataset carries a Fletcher-32 checksum and the file HDF5 1.10 checksummed metadata, so a
changed byte is a read error rather than a silently changed value (variable-length text
excepted: HDF5 filters do not apply to it).

Bad input raises `SslWriteError` (a `UserError` and `ValueError`) naming the file, the column
and, for a string too long, the row.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Mapping

import h5py
import numpy as np

from lvm_jax.data import ssl_schema
from lvm_jax.errors import UserError

REQUIRED_COLUMNS = (*ssl_schema.ID_COLUMNS, "ra", "dec")
COLUMN_CHUNK_ROWS = 4096  # rows per HDF5 chunk of a catalogue column
COMPRESSIONS = ssl_schema.COMPRESSIONS


class SslWriteError(UserError, ValueError):
  """Input that does not fit the ssl layout: file and column (and row) named."""


def _text_width(values: np.ndarray) -> int:
  return max((len(v) for v in values.ravel()), default=1) or 1


def _utf8(values: np.ndarray) -> np.ndarray:
  """str / object text as an array of UTF-8 bytes objects (bytes kept as they are)."""
  flat = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values.ravel()]
  out = np.empty(len(flat), dtype=object)
  out[:] = flat
  return out.reshape(values.shape)


def declared_dtypes(arrays: Mapping[str, Any]) -> dict[str, str]:
  """The dtypes that store whole columns as they are: text as fixed-width UTF-8 bytes
  (`S<longest>`), numbers and booleans as their own dtype."""
  out = {}
  for name, values in arrays.items():
    values = np.asarray(values)
    if values.dtype.kind in "USO":
      out[name] = f"S{_text_width(_utf8(values))}"
    else:
      out[name] = values.dtype.str
  return out


class SslShardWriter:
  """One ssl-layout HDF5 shard, written by `append` and finished by `close`.

  Args:
    path: the shard's file (its folder is created).
    npix: required stamp size in pixels; None accepts any square size (fixed by the first chunk).
    rows: the expected number of rows, to allocate the datasets once; None grows them per chunk.
      `close()` trims them to the rows written.
    extra_group: the HDF5 group of the extra columns.
    extra_dtypes: {name: numpy dtype} of extra columns (e.g. `"S16"`, `"int16"`); undeclared
      ones take the first chunk's dtype (text: variable-length UTF-8).
    attrs: file attributes (JSON-able values; dicts and lists are stored as JSON strings).
    id_dtype: the fixed-width bytes dtype (e.g. `"S19"`) of the optional per-galaxy text id
      (`ssl_schema.ROW_ID`, as a user's catalogue names it); None takes the first chunk's width.
    compression: of the images, one of `COMPRESSIONS` (with byte shuffling when not "none").
  """

  def __init__(self, path: str | os.PathLike, *, npix: int | None = ssl_schema.STAMP_SIZE,
               rows: int | None = None, extra_group: str = ssl_schema.TRUTH_GROUP,
               extra_dtypes: Mapping[str, Any] | None = None,
               attrs: Mapping[str, Any] | None = None, id_dtype: Any = None,
               compression: str = "none"):
    if compression not in COMPRESSIONS:
      raise SslWriteError(f"{path}: compression {compression!r} is not one of {COMPRESSIONS}")
    self.path = pathlib.Path(path)
    self.partial = self.path.with_name(self.path.name + ".partial")
    self.npix = npix
    self.rows = None if rows is None else int(rows)
    self.extra_group = extra_group
    self.extra_dtypes = {k: np.dtype(v) for k, v in (extra_dtypes or {}).items()}
    self.attrs = dict(attrs or {})
    self.id_dtype = None if id_dtype is None else np.dtype(id_dtype)
    self.compression = compression
    self._has_ids: bool | None = None
    self.written = 0
    self._file: h5py.File | None = None
    self._catalogue_names: tuple[str, ...] | None = None
    self._extra_names: tuple[str, ...] | None = None
    self._stamp: int | None = None
    self._extra_shapes: dict[str, tuple[int, ...]] = {}
    self._closed = False

  def _error(self, message: str) -> SslWriteError:
    return SslWriteError(f"{self.path}: {message}")

  # Checks -------------------------------------------------------------------------------------

  def _images(self, images: Any, channels_first: bool) -> np.ndarray:
    """(m, 3, S, S) float32 from (m, S, S, 3) (or (m, 3, S, S) when `channels_first`)."""
    images = np.asarray(images)
    bands = len(ssl_schema.BANDS)
    if channels_first:
      ok = images.ndim == 4 and images.shape[1] == bands and images.shape[2] == images.shape[3]
      if not ok:
        raise self._error(f"images: expected (N, 3, npix, npix), got {images.shape}")
      size = images.shape[2]
    else:
      ok = images.ndim == 4 and images.shape[3] == bands and images.shape[1] == images.shape[2]
      if not ok:
        raise self._error(f"images: expected (N, npix, npix, 3), got {images.shape}")
      size = images.shape[1]
    if self.npix is not None and size != self.npix:
      raise self._error(f"images: expected {self.npix}x{self.npix} stamps, got {images.shape}")
    if self._stamp is not None and size != self._stamp:
      raise self._error(f"images: {size}x{size} stamps after {self._stamp}x{self._stamp} ones")
    if not np.can_cast(images.dtype, np.float32, casting="same_kind"):
      raise self._error(f"images: cannot store {images.dtype} as float32 nanomaggies")
    images = images.astype(np.float32, copy=False)
    return images if channels_first else images.transpose(0, 3, 1, 2)

  def _schema_column(self, name: str, values: Any, m: int) -> np.ndarray:
    shape, dtype = ssl_schema.CATALOGUE_COLUMNS[name]
    values = np.asarray(values)
    if values.shape != (m, *shape):
      raise self._error(f"catalogue column {name!r}: expected shape {(m, *shape)}, "
                        f"got {values.shape}")
    if dtype.startswith("S"):
      return self._fixed_text(f"catalogue column {name!r}", values, np.dtype(dtype))
    if not np.can_cast(values.dtype, dtype, casting="same_kind"):
      raise self._error(f"catalogue column {name!r}: cannot store {values.dtype} as {dtype}")
    return values.astype(dtype)

  def _fixed_text(self, what: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if values.dtype.kind not in "USO":
      raise self._error(f"{what}: expected text, got {values.dtype}")
    encoded = _utf8(values)
    for row, v in enumerate(encoded.ravel()):
      if len(v) > dtype.itemsize:
        raise self._error(f"{what}: row {row + self.written} holds {len(v)} bytes, more than "
                          f"{dtype.itemsize}")
    return encoded.astype(dtype)

  def _extra_column(self, name: str, values: Any, m: int) -> np.ndarray:
    values = np.asarray(values)
    what = f"{self.extra_group} column {name!r}"
    if values.shape[:1] != (m,):
      raise self._error(f"{what}: expected {m} rows, got shape {values.shape}")
    trailing = self._extra_shapes.get(name)
    if trailing is not None and values.shape[1:] != trailing:
      raise self._error(f"{what}: expected shape {(m, *trailing)}, got {values.shape}")
    dtype = self.extra_dtypes.get(name)
    if dtype is None:
      return _utf8(values) if values.dtype.kind in "USO" else values
    if dtype.kind == "S":
      return self._fixed_text(what, values, dtype)
    if dtype.kind == "O":
      return _utf8(values)
    if not np.can_cast(values.dtype, dtype, casting="same_kind"):
      raise self._error(f"{what}: cannot store {values.dtype} as {dtype}")
    return values.astype(dtype)

  def _same_names(self, kind: str, names: tuple[str, ...], first: tuple[str, ...] | None) -> None:
    if first is not None and set(names) != set(first):
      raise self._error(f"{kind} columns {sorted(names)} differ from the first chunk's "
                        f"{sorted(first)}")

  # Writing ------------------------------------------------------------------------------------

  def append(self, images: Any, catalogue: Mapping[str, Any],
             extra: Mapping[str, Any] | None = None, *, channels_first: bool = False,
             ids: Any = None) -> None:
    """Appends m galaxies.

    Args:
      images: (m, H, W, 3) fluxes in nanomaggies, g, r, z (or (m, 3, H, W) with
        `channels_first`); stored float32 channel-first.
      catalogue: `ssl_schema.CATALOGUE_COLUMNS` columns, (m, ...) each.
      extra: other (m, ...) columns, stored under `extra_group`.
      ids: optional (m,) text ids, stored as `ssl_schema.ROW_ID` (every chunk or none).
    """
    if self._closed:
      raise self._error("append after close")
    chw = self._images(images, channels_first)
    m = chw.shape[0]
    unknown = sorted(set(catalogue) - set(ssl_schema.CATALOGUE_COLUMNS))
    if unknown:
      raise self._error(f"unknown catalogue columns {unknown}; put extra columns in "
                        f"`{self.extra_group}`")
    missing = [c for c in REQUIRED_COLUMNS if c not in catalogue]
    if missing:
      raise self._error(f"missing required catalogue columns {missing}")
    extra = dict(extra or {})
    self._same_names("catalogue", tuple(catalogue), self._catalogue_names)
    self._same_names(self.extra_group, tuple(extra), self._extra_names)
    columns = {name: self._schema_column(name, v, m) for name, v in catalogue.items()}
    extras = {name: self._extra_column(name, v, m) for name, v in extra.items()}
    if self._has_ids is not None and self._has_ids != (ids is not None):
      raise self._error(f"{ssl_schema.ROW_ID}: given for some chunks only")
    if ids is not None:
      ids = np.asarray(ids)
      if ids.shape != (m,):
        raise self._error(f"{ssl_schema.ROW_ID}: expected shape {(m,)}, got {ids.shape}")
      if self.id_dtype is None:
        self.id_dtype = np.dtype(f"S{_text_width(_utf8(ids))}")
      columns[ssl_schema.ROW_ID] = self._fixed_text(ssl_schema.ROW_ID, ids, self.id_dtype)
    if self.rows is not None and self.written + m > self.rows:
      raise self._error(f"{self.written + m} rows written, more than the {self.rows} allocated")
    if self._file is None:
      self._create(chw.shape[2], columns, extras)
    f, start, stop = self._file, self.written, self.written + m
    for name, values in ((ssl_schema.IMAGES, chw), *columns.items(),
                         *((f"{self.extra_group}/{k}", v) for k, v in extras.items())):
      dataset = f[name]
      if dataset.shape[0] < stop:
        dataset.resize(stop, axis=0)
      dataset[start:stop] = values
    self.written = stop

  def _create(self, stamp: int, columns: dict[str, np.ndarray],
              extras: dict[str, np.ndarray]) -> None:
    self._stamp = stamp
    self._has_ids = ssl_schema.ROW_ID in columns
    self._catalogue_names = tuple(c for c in columns if c != ssl_schema.ROW_ID)
    self._extra_names = tuple(extras)
    self.partial.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(self.partial, "w", libver="latest")  # checksummed metadata (HDF5 >= 1.10)
    self._file = f
    n = self.rows or 0
    rows = max(1, min(COLUMN_CHUNK_ROWS, self.rows or COLUMN_CHUNK_ROWS))
    bands = len(ssl_schema.BANDS)
    f.create_dataset(ssl_schema.IMAGES, shape=(n, bands, stamp, stamp), dtype="float32",
                     maxshape=(None, bands, stamp, stamp), chunks=(1, bands, stamp, stamp),
                     fletcher32=True,  # one stamp per chunk: fast random reads
                     **({} if self.compression == "none"
                        else {"compression": self.compression, "shuffle": True}))
    for name, values in columns.items():
      f.create_dataset(name, shape=(n, *values.shape[1:]), dtype=values.dtype,
                       maxshape=(None, *values.shape[1:]), chunks=(rows, *values.shape[1:]),
                       fletcher32=True)
    if extras:
      group = f.create_group(self.extra_group)
      for name, values in extras.items():
        self._extra_shapes[name] = values.shape[1:]
        self.extra_dtypes.setdefault(name, values.dtype)  # later chunks are checked against it
        text = values.dtype.kind == "O"  # variable-length: HDF5 filters do not apply
        group.create_dataset(name, shape=(n, *values.shape[1:]),
                             dtype=h5py.string_dtype() if text else values.dtype,
                             maxshape=(None, *values.shape[1:]),
                             chunks=(rows, *values.shape[1:]), fletcher32=not text)
    for key, value in self.attrs.items():
      f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value

  def close(self) -> pathlib.Path:
    """Trims the datasets to the rows written, closes the file and moves it to `path`."""
    if self._closed:
      return self.path
    self._closed = True
    if self._file is None:
      raise self._error("no rows were appended: nothing to write")
    f = self._file
    own_id = (ssl_schema.ROW_ID,) if self._has_ids else ()
    for name in (ssl_schema.IMAGES, *self._catalogue_names, *own_id,
                 *(f"{self.extra_group}/{k}" for k in self._extra_names)):
      if f[name].shape[0] != self.written:
        f[name].resize(self.written, axis=0)
    f.close()
    os.replace(self.partial, self.path)
    return self.path

  def abort(self) -> None:
    """Closes and deletes the partial file; `path` is left as it was."""
    self._closed = True
    if self._file is not None:
      self._file.close()
      self._file = None
    self.partial.unlink(missing_ok=True)

  def __enter__(self) -> SslShardWriter:
    return self

  def __exit__(self, exc_type, *exc) -> None:
    if exc_type is None:
      self.close()
    else:
      self.abort()


def write_shard(path: str | os.PathLike, images: Any, catalogue: Mapping[str, Any],
                extra: Mapping[str, Any] | None = None, *, channels_first: bool = False,
                npix: int | None = ssl_schema.STAMP_SIZE, extra_group: str = ssl_schema.TRUTH_GROUP,
                extra_dtypes: Mapping[str, Any] | None = None,
                attrs: Mapping[str, Any] | None = None, ids: Any = None,
                compression: str = "none") -> pathlib.Path:
  """One whole shard in one call (`SslShardWriter.append` once); text columns of `extra` as
  fixed-width UTF-8 bytes, as wide as their longest value unless `extra_dtypes` says (e.g. the
  widths of a whole catalogue, so every shard stores it alike). Returns the path."""
  extra = dict(extra or {})
  n = int(np.shape(images)[0]) if np.ndim(images) else 0
  dtypes = declared_dtypes(extra) if extra_dtypes is None else extra_dtypes
  writer = SslShardWriter(path, npix=npix, rows=n, extra_group=extra_group,
                          extra_dtypes=dtypes, attrs=attrs, compression=compression)
  with writer:
    writer.append(images, catalogue, extra, channels_first=channels_first, ids=ids)
  return writer.path
