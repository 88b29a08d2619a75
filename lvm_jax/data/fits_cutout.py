"""Legacy Survey FITS cutouts (the viewer's `fits-cutout` service), read band by header keyword.

A cutout file holds a (bands, H, W) float32 cube in nanomaggies with keywords `BAND0`, `BAND1`, ...
naming each plane, and a TAN WCS whose reference pixel is the stamp centre: `CRPIX = (W + 1) / 2`
in FITS 1-based pixels, i.e. 0-based pixel ((W - 1) / 2, (H - 1) / 2). `ra`, `dec` here are the
WCS at that 0-based centre, which equals the coordinates in the service's file names to ~1e-12 deg
(the 0-based pixel (W / 2, H / 2) would be off by half a pixel, ~3.6e-5 deg at 0.262 arcsec/px).
Optional extra HDUs with `EXTNAME` containing `INVVAR`/`IVAR` (inverse variance, 1/nanomaggies^2)
or `MASKBITS` are returned when present. HDUs with `CHECKSUM`/`DATASUM` keywords are verified:
a mismatch makes the file unreadable (`UnreadableFileError`); files without them cannot be
checked for changed bytes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import warnings
from typing import Any, Sequence

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS, FITSFixedWarning

from lvm_jax.data.validate import (MISSING_BAND, UNNAMED_PLANES, BadImageError,
                                   UnreadableFileError)

FITS_SUFFIXES = (".fits", ".fits.gz", ".fits.fz", ".fit")


@dataclasses.dataclass(frozen=True)
class FitsCutout:
  """One cutout: `image` (H, W, len(bands)) float32 nanomaggies in the requested band order.

  `invvar` is (H, W, len(bands)) float32 in 1/nanomaggies^2 and `maskbits` (H, W) integer, when the
  file has them; `ra`, `dec` are ICRS degrees of the stamp centre (NaN without a celestial WCS).
  """

  image: np.ndarray
  bands: tuple[str, ...]
  ra: float
  dec: float
  header: fits.Header
  path: pathlib.Path
  invvar: np.ndarray | None = None
  maskbits: np.ndarray | None = None


def cutout_id(path: str | os.PathLike) -> str:
  """The file name without its FITS suffix(es): `cutout_3.14_0.23.fits.gz` -> `cutout_3.14_0.23`."""
  name = pathlib.Path(path).name
  for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
    if name.lower().endswith(suffix):
      return name[:-len(suffix)]
  return pathlib.Path(name).stem


def header_bands(header: fits.Header, n_planes: int) -> tuple[str, ...] | None:
  """Plane names from `BAND0..BAND{n-1}`, else from a `BANDS` string of one letter per plane."""
  keys = [f"BAND{i}" for i in range(n_planes)]
  if any(k in header for k in keys):
    missing = [k for k in keys if k not in header]
    if missing:
      return None
    return tuple(str(header[k]).strip() for k in keys)
  packed = str(header.get("BANDS", "")).strip()
  if len(packed) == n_planes:
    return tuple(packed)
  return None


def _read_hdus(path: pathlib.Path) -> list[tuple[fits.Header, np.ndarray | None]]:
  """All HDUs' headers and data, fully loaded; any read problem becomes `UnreadableFileError`."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", VerifyWarning)  # a corrupt header raises below anyway
      warnings.filterwarnings("error", message=".*truncated.*")
      warnings.filterwarnings("error", message=".*(Checksum|Datasum) verification failed.*")
      with fits.open(path, memmap=False, checksum=True) as hdul:
        return [(hdu.header.copy(), None if hdu.data is None else np.array(hdu.data))
                for hdu in hdul]
  except FileNotFoundError:
    raise
  except Exception as e:  # astropy raises OSError, ValueError, TypeError... on corrupt files.
    raise UnreadableFileError(path, f"{type(e).__name__}: {e}") from e


def _select(cube: np.ndarray, present: Sequence[str], bands: Sequence[str], path, what: str):
  """(H, W, len(bands)) float32 from a (planes, H, W) cube, planes chosen by name."""
  index = []
  for b in bands:
    if b not in present:
      raise BadImageError(f"{path}: band {b!r} not in the {what} (bands present: "
                          f"{list(present)})", reason=MISSING_BAND, source=str(path), index=0)
    index.append(list(present).index(b))
  return np.ascontiguousarray(np.moveaxis(cube[index], 0, -1), dtype=np.float32)


def _centre_radec(header: fits.Header, height: int, width: int) -> tuple[float, float]:
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FITSFixedWarning)
    try:
      wcs = WCS(header, naxis=2)
    except Exception:  # a malformed WCS is reported as NaN coordinates, not a read failure.
      return float("nan"), float("nan")
  if not wcs.has_celestial:
    return float("nan"), float("nan")
  ra, dec = wcs.pixel_to_world_values((width - 1) / 2.0, (height - 1) / 2.0)
  return float(ra), float(dec)


def _extname(header: fits.Header) -> str:
  return str(header.get("EXTNAME", "")).upper()


def read_fits_cutout(path: str | os.PathLike, bands: Sequence[str] = ("g", "r", "z")) -> FitsCutout:
  """Reads one cutout, choosing planes by their `BANDi` keywords (never by position).

  Raises:
    BadImageError (a ValueError): a requested band is absent (`missing_band`), or the planes are
      not named (`unnamed_planes`); the message names the file.
    UnreadableFileError: the file is truncated or corrupt.
  """
  path = pathlib.Path(path)
  bands = tuple(bands)
  hdus = _read_hdus(path)
  image_hdu = next(((h, d) for h, d in hdus if d is not None and d.ndim in (2, 3)
                    and not re.search("INVVAR|IVAR|MASKBITS", _extname(h))), None)
  if image_hdu is None:
    raise UnreadableFileError(path, "no image HDU")
  header, cube = image_hdu
  cube = cube[None] if cube.ndim == 2 else cube
  present = header_bands(header, cube.shape[0])
  if present is None:
    raise BadImageError(f"{path}: planes are not named by BAND0..BAND{cube.shape[0] - 1} "
                        f"keywords", reason=UNNAMED_PLANES, source=str(path), index=0)
  image = _select(cube, present, bands, path, "image")
  ra, dec = _centre_radec(header, *image.shape[:2])

  invvar = maskbits = None
  for h, d in hdus:
    if d is None:
      continue
    name = _extname(h)
    if re.search("INVVAR|IVAR", name):
      d = d[None] if d.ndim == 2 else d
      named = header_bands(h, d.shape[0]) or present  # same plane order as the image if unnamed
      invvar = _select(d, named, bands, path, f"{name} HDU")
    elif "MASKBITS" in name:
      maskbits = np.asarray(d).astype(d.dtype.newbyteorder("="))
  return FitsCutout(image=image, bands=bands, ra=ra, dec=dec, header=header, path=path,
                    invvar=invvar, maskbits=maskbits)


class FitsCutoutSource:
  """Random access over FITS cutouts (one galaxy per file), opened lazily on each access.

  `folder_or_paths` is a folder (all `*.fits`, `*.fits.gz`, sorted by name) or a list of files.
  Records: `image` (H, W, len(bands)) float32 nanomaggies, `bands`, `ra`, `dec` (deg), `id` (file
  name without suffix), `source_file`, `source_index` (always 0: one cutout per file). Picklable,
  holds no open files, so it suits Grain's `RandomAccessDataSource` protocol.
  """

  def __init__(self, folder_or_paths: str | os.PathLike | Sequence[str | os.PathLike],
               bands: Sequence[str] = ("g", "r", "z")):
    if isinstance(folder_or_paths, (str, os.PathLike)) and pathlib.Path(folder_or_paths).is_dir():
      folder = pathlib.Path(folder_or_paths)
      paths = [p for p in folder.iterdir() if p.name.lower().endswith(FITS_SUFFIXES)]
      self.paths = sorted(paths, key=lambda p: p.name)
    elif isinstance(folder_or_paths, (str, os.PathLike)):
      self.paths = [pathlib.Path(folder_or_paths)]
    else:
      self.paths = [pathlib.Path(p) for p in folder_or_paths]
    self.bands = tuple(bands)

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} cutouts")
    path = self.paths[index]
    cutout = read_fits_cutout(path, self.bands)
    return {"image": cutout.image, "bands": cutout.bands, "ra": cutout.ra, "dec": cutout.dec,
            "id": cutout_id(path), "source_file": str(path), "source_index": 0}

  def __repr__(self) -> str:
    return f"FitsCutoutSource({len(self)} files, bands={self.bands})"
