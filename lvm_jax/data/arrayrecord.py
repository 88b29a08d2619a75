"""Pre-cropped galaxies in ArrayRecord files, written by a tensorflow-datasets builder, without TF.

The expensive part of the preprocessing (adaptive crop, anti-aliased resize) runs once, at ingest;
training then reads (S, S, 3) float32 stamps by random access. Layout (standard tfds):

  <data_dir>/precropped_galaxies/<name>/1.0.0/
    precropped_galaxies-train.array_record-00000-of-0000N   serialized tf.train.Example protos
    dataset_info.json, features.json, metadata.json          tfds metadata (metadata: preprocessing)
    lvm_precropped.json                                      the `Preprocessing` dict, ingest counts

Records keep the source order (`disable_shuffling=True`): record i is the i-th good source record.
tfds 4.9.10 writes ArrayRecord through its own example serializer and `array_record`, with
TensorFlow absent (checked in the tests). Read back with `PrecroppedSource` through either
`builder.as_data_source()` (reader="tfds") or `grain.sources.ArrayRecordDataSource` on the files
decoded by the builder's features (reader="grain").
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Iterator

from etils import epath
import grain
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import utils as tfds_utils

from lvm_jax.data.pipeline import apply_preprocessing
from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.data.validate import BadImageError, Quarantine, UnreadableFileError, validate_image

BUILDER_NAME = "precropped_galaxies"
SPLIT = "train"
SIDECAR = "lvm_precropped.json"


def _float64() -> tfds.features.Tensor:
  # tf.train.Example has float32 lists only: a plain float64 Scalar comes back rounded to float32
  # (0.1 arcsec at ra ~ 300 deg); raw bytes keep all 64 bits.
  return tfds.features.Tensor(shape=(), dtype=np.float64, encoding=tfds.features.Encoding.BYTES)


def features(out_size: int) -> tfds.features.FeaturesDict:
  """image (S, S, 3) float32 (preprocessed), ids, ICRS ra/dec (deg, float64), crop geometry."""
  return tfds.features.FeaturesDict({
      "image": tfds.features.Tensor(shape=(out_size, out_size, 3), dtype=np.float32),
      "id": tfds.features.Text(),
      "ra": _float64(),
      "dec": _float64(),
      "source_file": tfds.features.Text(),
      "source_index": tfds.features.Scalar(dtype=np.int64),
      "box": tfds.features.Tensor(shape=(4,), dtype=np.int32),
      "arcsec_per_pixel": tfds.features.Scalar(dtype=np.float32),
  })


class PrecroppedGalaxies(tfds.core.GeneratorBasedBuilder):
  """Ingests any data-layer source through a `Preprocessing`; one split, `train`.

  Args (beyond tfds's `data_dir`, `config`, `file_format`):
    source: random-access records with `image` (H, W, 3) nanomaggies, `id`, `source_file`,
      `source_index`, optionally `ra`, `dec` (NaN when absent).
    preprocessing: applied once per record.
    quarantine: bad images are skipped and recorded; None raises `BadImageError` on the first.
    fast_resize: `pipeline.fast_resize` (equal to skimage to float32 rounding) instead of skimage.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}

  @tfds_utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # tfds 4.9.10 resolves a packaged builder's file through the `importlib_resources` backport,
    # which is not installed (nor needed on Python >= 3.9); this file is the answer it looks for.
    return epath.Path(__file__)

  def __init__(self, *, source=None, preprocessing: Preprocessing | None = None,
               quarantine: Quarantine | None = None, fast_resize: bool = True, **kwargs):
    self._source = source
    self._preprocessing = preprocessing or Preprocessing()
    self._quarantine = quarantine
    self._fast_resize = fast_resize
    self.ingest_counts = {"written": 0, "skipped": 0}
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__.splitlines()[0],
        features=features(self._preprocessing.out_size), disable_shuffling=True,
        metadata=tfds.core.MetadataDict(preprocessing=self._preprocessing.to_dict(),
                                        fast_resize=self._fast_resize))

  def _split_generators(self, dl_manager):
    del dl_manager
    if self._source is None:
      raise ValueError("PrecroppedGalaxies needs `source=` to generate the dataset")
    return {SPLIT: self._generate_examples()}

  def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
    for i in range(len(self._source)):
      example = self._example(i)
      if example is not None:
        self.ingest_counts["written"] += 1
        yield i, example

  def _example(self, i: int) -> dict[str, Any] | None:
    record: dict[str, Any] = {}
    try:
      record = self._source[i]
      image = validate_image(record["image"], source=str(record.get("source_file", "")),
                             index=record.get("source_index"))
    except (BadImageError, UnreadableFileError) as e:
      if self._quarantine is None:
        raise
      self.ingest_counts["skipped"] += 1
      self._quarantine.add_error(record or {"source_file": getattr(e, "path", "")}, e)
      return None
    out, info = apply_preprocessing(self._preprocessing, image, fast=self._fast_resize)
    return {"image": out, "id": str(record.get("id", i)),
            "ra": float(record.get("ra", np.nan)), "dec": float(record.get("dec", np.nan)),
            "source_file": str(record.get("source_file", "")),
            "source_index": int(record.get("source_index", i)),
            "box": np.asarray(info["box"], np.int32),
            "arcsec_per_pixel": np.float32(info["arcsec_per_pixel"])}


def write_precropped(source, preprocessing: Preprocessing, data_dir: str | os.PathLike, *,
                     name: str = "default", quarantine: Quarantine | None = None,
                     fast_resize: bool = True, overwrite: bool = False) -> pathlib.Path:
  """Writes `source` pre-cropped as ArrayRecord under `data_dir`; returns the dataset directory.

  `name` is the tfds builder config: <data_dir>/precropped_galaxies/<name>/1.0.0. An existing
  dataset of that name is reused when its preprocessing is the same (ValueError otherwise), and
  rewritten when `overwrite`.
  """
  config = tfds.core.BuilderConfig(name=name, description=f"precropped {preprocessing}")
  builder = PrecroppedGalaxies(source=source, preprocessing=preprocessing, quarantine=quarantine,
                               fast_resize=fast_resize, data_dir=os.fspath(data_dir),
                               config=config, file_format="array_record")
  path = pathlib.Path(builder.data_dir)
  if builder.is_prepared() and not overwrite:
    stored = json.loads((path / SIDECAR).read_text())["preprocessing"]
    if Preprocessing.from_dict(stored) != preprocessing:
      raise ValueError(f"{path} holds {stored}, not {preprocessing.to_dict()}; pass "
                       f"overwrite=True or another name")
    return path
  mode = (tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))
  (path / SIDECAR).write_text(json.dumps({
      "preprocessing": preprocessing.to_dict(), "fast_resize": fast_resize,
      "source": repr(source), **builder.ingest_counts}, indent=1))
  return path


def find_dataset_dir(path: str | os.PathLike, name: str = "default") -> pathlib.Path:
  """The version directory (holding dataset_info.json) from itself or from a tfds data_dir."""
  path = pathlib.Path(path)
  if (path / "dataset_info.json").exists():
    return path
  versions = sorted((path / BUILDER_NAME / name).glob("*/dataset_info.json"))
  if not versions:
    raise FileNotFoundError(f"no {BUILDER_NAME}/{name} dataset under {path}")
  return versions[-1].parent


def _decode(record: dict[str, Any]) -> dict[str, Any]:
  out = dict(record)
  for key in ("id", "source_file"):
    if isinstance(out[key], bytes):
      out[key] = out[key].decode()
  out["source_index"] = int(out["source_index"])
  out["ra"], out["dec"] = float(out["ra"]), float(out["dec"])
  return out


class PrecroppedSource:
  """Random access over a pre-cropped dataset; records like the other sources plus `box`.

  Records: `image` (S, S, 3) float32 (already preprocessed by `self.preprocessing`), `id`, `ra`,
  `dec`, `source_file`, `source_index` (of the original record), `box` (4,) int32,
  `arcsec_per_pixel`. reader: 'tfds' (`builder.as_data_source()`) or 'grain'
  (`grain.sources.ArrayRecordDataSource` over the files, decoded with the builder's features).
  Readers are opened lazily per process, so the source pickles into Grain workers.
  """

  def __init__(self, path: str | os.PathLike, *, name: str = "default", reader: str = "tfds"):
    if reader not in ("tfds", "grain"):
      raise ValueError(f"reader must be 'tfds' or 'grain', got {reader!r}")
    self.path = find_dataset_dir(path, name)
    self.reader = reader
    sidecar = json.loads((self.path / SIDECAR).read_text())
    self.preprocessing = Preprocessing.from_dict(sidecar["preprocessing"])
    self._builder = None
    self._records = None

  def _open(self):
    if self._records is None:
      self._builder = tfds.builder_from_directory(self.path)
      if self.reader == "tfds":
        self._records = self._builder.as_data_source(split=SPLIT)
      else:
        self._records = grain.sources.ArrayRecordDataSource(
            [os.fspath(p) for p in self.files()])
    return self._records

  def files(self) -> list[pathlib.Path]:
    """The ArrayRecord shards in order."""
    return sorted(self.path.glob(f"{BUILDER_NAME}-{SPLIT}.array_record-*"))

  def passthrough_preprocessing(self, normalisation: str = "none") -> Preprocessing:
    """A pipeline `Preprocessing` that keeps the stored (S, S) stamps (optionally normalises)."""
    return Preprocessing(mode="fixed", out_size=self.preprocessing.out_size,
                         normalisation=normalisation,
                         asinh_softening=self.preprocessing.asinh_softening)

  def __len__(self) -> int:
    return len(self._open())

  def __getitem__(self, index: int) -> dict[str, Any]:
    records = self._open()
    index = int(index)
    if not -len(records) <= index < len(records):
      raise IndexError(f"index {index} out of range for {len(records)} records")
    index %= len(records)
    record = records[index]
    if self.reader == "grain":
      record = self._builder.info.features.deserialize_example_np(record)
    return _decode(record)

  def __getstate__(self) -> dict[str, Any]:
    state = dict(self.__dict__)
    state["_builder"], state["_records"] = None, None
    return state

  def __repr__(self) -> str:
    return f"PrecroppedSource({self.path}, reader={self.reader!r})"
