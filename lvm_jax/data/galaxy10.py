"""Galaxy10 DECaLS (Leung & Bovy; astroNN): 17,736 labelled colour composites in one HDF5 file.

Layout of `Galaxy10_DECals.h5`:

| dataset | shape, dtype | meaning |
| --- | --- | --- |
| `images` | (N, 256, 256, 3) uint8 | g, r, z colour composite (display RGB), 0.262 arcsec/px |
| `ans` | (N,) uint8 | class 0-9 (`CLASS_NAMES`) |
| `ra`, `dec` | (N,) float64 | ICRS degrees |
| `redshift` | (N,) float64 | redshift (NaN where unknown) |
| `pxscale` | (N,) float64 | arcsec per pixel |

These are *display* images (an RGB stretch of the survey's bands), not fluxes: a model trained on
nanomaggies must not be fed them silently; `check_image_kind` is the guard.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import h5py
import numpy as np

from lvm_jax.data.validate import UnreadableFileError
from lvm_jax.errors import UserError

CLASS_NAMES = (
    "Disturbed",
    "Merging",
    "Round Smooth",
    "In-between Round Smooth",
    "Cigar Shaped Smooth",
    "Barred Spiral",
    "Unbarred Tight Spiral",
    "Unbarred Loose Spiral",
    "Edge-on without Bulge",
    "Edge-on with Bulge",
)
FLUX = "flux"  # nanomaggies, the survey's calibrated pixels
DISPLAY_RGB = "display_rgb"  # uint8 colour composite
IMAGE_KINDS = (FLUX, DISPLAY_RGB)
COLUMNS = ("ans", "ra", "dec", "redshift", "pxscale")


class ImageKindError(UserError, ValueError):
  """Images of one kind (e.g. display RGB) given to a model that expects another (flux)."""


def check_image_kind(record_kind: str, expected: str = FLUX, *,
                     allow_display_rgb: bool = False) -> None:
  """Raises `ImageKindError` unless images of `record_kind` suit a model expecting `expected`.

  Display-RGB composites (uint8, stretched, colour-mixed) fed to a flux-trained model give
  features that mean nothing; pass `allow_display_rgb=True` to do it on purpose (e.g. a probe on
  Galaxy10 for comparison with the literature).
  """
  for kind in (record_kind, expected):
    if kind not in IMAGE_KINDS:
      raise ValueError(f"unknown image kind {kind!r}; expected one of {IMAGE_KINDS}")
  if record_kind == expected:
    return
  if allow_display_rgb:  # any mismatch, told on purpose (`--allow-kind-mismatch`)
    return
  raise ImageKindError(
      f"images are {record_kind!r} but the model expects {expected!r}: Galaxy10-style uint8 "
      f"colour composites are not fluxes in nanomaggies. Use flux cutouts of the same galaxies "
      f"(e.g. by ra/dec from the Legacy Survey), or pass allow_display_rgb=True "
      f"(`--allow-kind-mismatch`) to proceed anyway.")


class Galaxy10DecalsSource:
  """Random access over `Galaxy10_DECals.h5`; the file is opened lazily in each process.

  Records: `image` (256, 256, 3) uint8 display RGB, `kind` = "display_rgb", `label` (int 0-9),
  `class_name`, `ra`, `dec` (deg), `redshift`, `arcsec_per_pixel`, `id` ("galaxy10_<row>"),
  `source_file`, `source_index` (row).

  Raises:
    KeyError: a dataset of the layout is missing (naming file and dataset).
    UnreadableFileError: the file is not HDF5 or truncated.
  """

  kind = DISPLAY_RGB

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    try:
      with h5py.File(self.path, "r") as f:
        for name in ("images", *COLUMNS):
          if name not in f:
            raise KeyError(f"{self.path}: dataset {name!r} not found")
        self._len = f["images"].shape[0]
        if f["images"].dtype != np.uint8 or f["images"].ndim != 4 or f["images"].shape[-1] != 3:
          raise UnreadableFileError(self.path, f"images are {f['images'].dtype} "
                                    f"{f['images'].shape}, expected (N, H, W, 3) uint8")
        self.labels = np.asarray(f["ans"][:], dtype=np.int64)
    except OSError as e:
      if isinstance(e, (UnreadableFileError, FileNotFoundError)) or not self.path.exists():
        raise
      raise UnreadableFileError(self.path, str(e)) from e
    self._file: h5py.File | None = None
    self._pid: int | None = None

  def __len__(self) -> int:
    return self._len

  def _open(self) -> h5py.File:
    if self._pid != os.getpid():
      self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
    return self._file

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} galaxies")
    index %= len(self)
    f = self._open()
    label = int(f["ans"][index])
    return {"image": np.asarray(f["images"][index]), "kind": DISPLAY_RGB, "label": label,
            "class_name": CLASS_NAMES[label], "ra": float(f["ra"][index]),
            "dec": float(f["dec"][index]), "redshift": float(f["redshift"][index]),
            "arcsec_per_pixel": float(f["pxscale"][index]), "id": f"galaxy10_{index}",
            "source_file": str(self.path), "source_index": index}

  def class_counts(self) -> dict[str, int]:
    """Galaxies per class name."""
    counts = np.bincount(self.labels, minlength=len(CLASS_NAMES))
    return {name: int(c) for name, c in zip(CLASS_NAMES, counts)}

  def __getstate__(self) -> dict[str, Any]:
    state = dict(self.__dict__)
    state["_file"], state["_pid"] = None, None
    return state

  def __repr__(self) -> str:
    return f"Galaxy10DecalsSource({self.path}, {len(self)} galaxies)"


def write_galaxy10(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                   ra: np.ndarray, dec: np.ndarray, redshift: np.ndarray | None = None,
                   pxscale: float | np.ndarray = 0.262) -> pathlib.Path:
  """Writes a file in the Galaxy10 DECaLS layout (for tests and small subsets)."""
  images = np.asarray(images)
  n = images.shape[0]
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"images: expected (N, H, W, 3) uint8, got {images.dtype} {images.shape}")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with h5py.File(path, "w") as f:
    f.create_dataset("images", data=images, chunks=(1, *images.shape[1:]) if n else None)
    f.create_dataset("ans", data=np.asarray(labels, np.uint8))
    f.create_dataset("ra", data=np.asarray(ra, np.float64))
    f.create_dataset("dec", data=np.asarray(dec, np.float64))
    f.create_dataset("redshift", data=np.full(n, np.nan) if redshift is None
                     else np.asarray(redshift, np.float64))
    f.create_dataset("pxscale", data=np.broadcast_to(np.asarray(pxscale, np.float64), (n,)))
  return path
