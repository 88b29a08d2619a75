"""Which survey source a `--data` path is, and uniform records for the export.

Detected from the path: a pre-cropped ArrayRecord dataset (a folder with `dataset_info.json`
or `precropped_galaxies/`), ssl-legacysurvey HDF5 (one `.h5`/`.hdf5` file or a folder of them),
Galaxy10 DECaLS HDF5 (a file with `ans` and uint8 images: display RGB, refused for flux models
unless allowed), or FITS cutouts (one file or a folder).

Records (`ExportSource.record(i)`): `image` (H, W, 3) float32 (nanomaggies; already preprocessed
for pre-cropped data), `id`, `source_file`, `source_index`, `ra`, `dec` (deg, NaN if unknown),
`mask_flags` (int), each carried column by its requested name, and for pre-cropped data `box`
and `arcsec_per_pixel`.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Sequence

import numpy as np

from lvm_jax.data import fits_cutout
from lvm_jax.data import galaxy10
from lvm_jax.data.preprocess import Preprocessing

HDF5_SUFFIXES = (".h5", ".hdf5")


def detect(path: str | pathlib.Path) -> str:
  """'precropped', 'hdf5', 'galaxy10' or 'fits' for a `--data` path; ValueError otherwise."""
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(path)
  if path.is_dir():
    if (path / "dataset_info.json").exists() or (path / "precropped_galaxies").is_dir():
      return "precropped"
    names = [p.name.lower() for p in path.iterdir()]
    if any(n.endswith(HDF5_SUFFIXES) for n in names):
      return "hdf5"
    if any(n.endswith(fits_cutout.FITS_SUFFIXES) for n in names):
      return "fits"
    raise ValueError(f"{path}: no HDF5, FITS or pre-cropped ArrayRecord data found")
  name = path.name.lower()
  if name.endswith(HDF5_SUFFIXES):
    import h5py
    with h5py.File(path, "r") as f:
      return "galaxy10" if "ans" in f and f["images"].dtype == np.uint8 else "hdf5"
  if name.endswith(fits_cutout.FITS_SUFFIXES):
    return "fits"
  raise ValueError(f"{path}: not an HDF5 or FITS file")


@dataclasses.dataclass
class ExportSource:
  """A random-access source wrapped for the export (see the module docstring for records).

  kind: the detected kind; image_kind: 'flux' or 'display_rgb'; preprocessed: the
  `Preprocessing` already applied (pre-cropped data), else None.
  """

  path: pathlib.Path
  kind: str
  source: Any
  carry: tuple[str, ...] = ()
  image_kind: str = galaxy10.FLUX
  preprocessed: Preprocessing | None = None

  def __len__(self) -> int:
    return len(self.source)

  def record(self, index: int) -> dict[str, Any]:
    if self.kind == "fits":
      return self._fits_record(index)
    record = dict(self.source[index])
    record.setdefault("mask_flags", 0)
    for name in self.carry:
      if name not in record:
        raise KeyError(f"{record.get('source_file', self.path)}: no column {name!r} to carry")
    if self.kind == "galaxy10":
      record["image"] = np.asarray(record["image"], np.float32)
    return record

  def _fits_record(self, index: int) -> dict[str, Any]:
    path = self.source.paths[index]
    cutout = fits_cutout.read_fits_cutout(path, self.source.bands)
    h, w = cutout.image.shape[:2]
    mask = 0 if cutout.maskbits is None else int(cutout.maskbits[h // 2, w // 2])
    record = {"image": cutout.image, "ra": cutout.ra, "dec": cutout.dec,
              "id": fits_cutout.cutout_id(path), "source_file": str(path), "source_index": 0,
              "mask_flags": mask}
    for name in self.carry:
      if name not in cutout.header:
        raise KeyError(f"{path}: no header keyword {name!r} to carry")
      record[name] = cutout.header[name]
    return record

  def where(self, index: int) -> tuple[str, int]:
    """(file, index within it) of record `index`, known without reading the record."""
    if self.kind == "fits":
      return str(self.source.paths[index]), 0
    if self.kind == "hdf5":
      file_number, row = self.source.locate(index)
      return str(self.source.paths[file_number]), row
    return str(self.path), int(index)

  def ids(self) -> list[str] | None:
    """Every record's id in index order, read cheaply (None where the kind cannot)."""
    if self.kind == "fits":
      return [fits_cutout.cutout_id(p) for p in self.source.paths]
    if self.kind == "hdf5":
      return self.source.ids()
    return None

  def describe(self) -> dict[str, Any]:
    return {"path": str(self.path.resolve()), "kind": self.kind, "records": len(self),
            "image_kind": self.image_kind}


def open_source(path: str | pathlib.Path, carry: Sequence[str] = (),
                allow_nonfloat: bool = False) -> ExportSource:
  """Detects and opens `path` (see `detect`); `carry` names catalogue columns to pass through.

  `allow_nonfloat`: accept ssl HDF5 files whose images are not float32/float64 flux.
  """
  path = pathlib.Path(path)
  kind = detect(path)
  carry = tuple(carry)
  if kind == "hdf5":
    from lvm_jax.data.hdf5_source import SslLegacySurveySource
    files = path if path.is_file() else sorted(
        p for p in path.iterdir() if p.name.lower().endswith(HDF5_SUFFIXES))
    from lvm_jax.ingest.layout import survey_image_kind
    columns = tuple(dict.fromkeys(("ra", "dec", *carry)))
    return ExportSource(path, kind, SslLegacySurveySource(files, columns=columns,
                                                          allow_nonfloat=allow_nonfloat), carry,
                        image_kind=survey_image_kind(path) or galaxy10.FLUX)
  if kind == "galaxy10":
    return ExportSource(path, kind, galaxy10.Galaxy10DecalsSource(path), carry,
                        image_kind=galaxy10.DISPLAY_RGB)
  if kind == "fits":
    return ExportSource(path, kind, fits_cutout.FitsCutoutSource(path), carry)
  from lvm_jax.data.arrayrecord import PrecroppedSource
  source = PrecroppedSource(path)
  return ExportSource(path, kind, source, carry, preprocessed=source.preprocessing)


def input_preprocessing(source: ExportSource, wanted: Preprocessing) -> Preprocessing | None:
  """What the export still applies to the source's images to meet the checkpoint's `wanted`.

  None: apply `wanted` in full (raw stamps). For pre-cropped data: a pass-through, or only the
  asinh normalisation when the crop matches and the stored stamps are not normalised yet.
  Raises ValueError when the stored crop differs from the checkpoint's.
  """
  stored = source.preprocessed
  if stored is None:
    return None
  if stored == wanted:
    return Preprocessing(mode="fixed", out_size=wanted.out_size)
  if (dataclasses.replace(stored, normalisation=wanted.normalisation,
                          asinh_softening=wanted.asinh_softening) == wanted
      and stored.normalisation == "none"):
    return Preprocessing(mode="fixed", out_size=wanted.out_size,
                         normalisation=wanted.normalisation,
                         asinh_softening=wanted.asinh_softening)
  raise ValueError(f"{source.path} was pre-cropped with {stored.to_dict()}, but the checkpoint "
                   f"expects {wanted.to_dict()}; re-ingest with the checkpoint's preprocessing")
