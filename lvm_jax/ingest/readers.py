"""One catalogue row's file -> a checked (3, S, S) float32 stamp, or the reason it is quarantined.

Runs in the ingest's worker processes, so it takes and returns plain picklable values.

Image kinds: `flux` (FITS cutouts, g, r, z planes chosen by their BANDi keywords via
`lvm_jax.data.fits_cutout`, nanomaggies) and `display_rgb` (JPEG/PNG colour composites, R, G, B
values 0-255 stored as float32). Reasons are the codes of `lvm_jax.data.validate` plus
`missing_file` (the CSV names a file that does not exist) and `wrong_kind` (a JPEG in a FITS set
or the reverse).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Sequence

import numpy as np

from lvm_jax.data import validate
from lvm_jax.ingest import catalogue as catalogue_lib

MISSING_FILE = "missing_file"
WRONG_KIND = "wrong_kind"
NO_CATALOGUE_ROW = "no_catalogue_row"


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  """kind: 'flux' or 'display_rgb'; bands: FITS bands in stored order; stamp: output side, px;
  resize: centre-crop to a square and resample to `stamp` (else other sizes are quarantined);
  min_size: smaller sides (px, before resizing) are quarantined as `too_small`."""

  kind: str
  stamp: int
  bands: tuple[str, ...] = ("g", "r", "z")
  resize: bool = False
  min_size: int = 16


def _read_rgb(path: pathlib.Path) -> np.ndarray:
  """(H, W, bands) float32 of a JPEG/PNG, 0-255; raises UnreadableFileError."""
  from PIL import Image, UnidentifiedImageError
  failures = (UnidentifiedImageError, OSError, ValueError, SyntaxError,
              Image.DecompressionBombError)
  try:
    with Image.open(path) as img:
      img.load()  # decodes now: a truncated file raises here
      if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
      return np.asarray(img, dtype=np.float32).reshape(img.size[1], img.size[0], -1)
  except failures as e:
    raise validate.UnreadableFileError(path, f"{type(e).__name__}: {e}") from e


def _read_flux(path: pathlib.Path, bands: Sequence[str]) -> tuple[np.ndarray, float, float]:
  from lvm_jax.data import fits_cutout
  try:
    cutout = fits_cutout.read_fits_cutout(path, bands)
  except (validate.BadImageError, validate.UnreadableFileError):
    raise
  except (OSError, ValueError, TypeError, IndexError, KeyError) as e:  # astropy on damaged files
    raise validate.UnreadableFileError(path, f"{type(e).__name__}: {e}") from e
  return cutout.image, cutout.ra, cutout.dec


def to_stamp(image: np.ndarray, stamp: int) -> np.ndarray:
  """(H, W, C) -> (stamp, stamp, C): the central square, resampled (area-averaged when shrinking,
  so flux images keep their surface brightness per pixel, not their total flux)."""
  import cv2
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = np.ascontiguousarray(image[top:top + side, left:left + side])
  if side == stamp:
    return square
  method = cv2.INTER_AREA if side > stamp else cv2.INTER_LINEAR
  out = cv2.resize(square, (stamp, stamp), interpolation=method)
  return out.reshape(stamp, stamp, image.shape[2])


def read_image(path: pathlib.Path, options: ReadOptions, index: int | None = None
               ) -> tuple[np.ndarray, float, float]:
  """(H, W, 3) float32 image of one file before resizing, and the ra, dec its header gives (NaN).

  Raises BadImageError (with a reason) or UnreadableFileError, naming the file.
  """
  kind = catalogue_lib.image_kind_of(path.name)
  if kind != options.kind:
    raise validate.BadImageError(f"{path}: a {kind} file in a {options.kind} set",
                                 reason=WRONG_KIND, source=str(path), index=index)
  if kind == "flux":
    image, ra, dec = _read_flux(path, options.bands)
  else:
    image, ra, dec = _read_rgb(path), np.nan, np.nan
  return image, ra, dec


def check(image: np.ndarray, path: pathlib.Path, options: ReadOptions, index: int | None = None
          ) -> np.ndarray:
  """The validated (stamp, stamp, 3) float32 stamp of a just-read image; raises BadImageError."""
  source = str(path)
  validate.validate_image(image, expected_bands=3, source=source, index=index,
                          allow_constant_band=False)
  h, w = image.shape[:2]
  if min(h, w) < options.min_size:
    raise validate.BadImageError(f"{source}: {h}x{w} px is smaller than {options.min_size} px",
                                 reason=validate.TOO_SMALL, source=source, index=index)
  if not options.resize and (h, w) != (options.stamp, options.stamp):
    raise validate.BadImageError(
        f"{source}: {h}x{w} px, the set's stamps are {options.stamp}x{options.stamp} (pass "
        f"--stamp to resize every image)", reason=validate.SHAPE, source=source, index=index)
  stamp = to_stamp(image, options.stamp).astype(np.float32, copy=False)
  if options.kind == "display_rgb":  # 8-bit values stay whole numbers (and compress 3-4x)
    stamp = np.clip(np.rint(stamp), 0, 255, out=stamp)
  return stamp


def load(task: tuple[int, str, ReadOptions]) -> dict[str, Any]:
  """Worker entry: (row, file path, options) -> {row, image (3, S, S) float32 | None, ra, dec,
  reason, detail}; never raises for a bad file."""
  row, file, options = task
  path = pathlib.Path(file)
  out: dict[str, Any] = {"row": row, "image": None, "ra": np.nan, "dec": np.nan,
                         "reason": "", "detail": ""}
  if not path.is_file():
    out.update(reason=MISSING_FILE, detail=f"{path}: no such file")
    return out
  try:
    image, out["ra"], out["dec"] = read_image(path, options, row)
    stamp = check(image, path, options, row)
  except (validate.BadImageError, validate.UnreadableFileError) as e:
    out.update(reason=getattr(e, "reason", validate.UNREADABLE) or validate.UNREADABLE,
               detail=" ".join(str(e).split()))
    return out
  out["image"] = np.ascontiguousarray(np.moveaxis(stamp, -1, 0))
  return out
