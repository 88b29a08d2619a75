"""Training data: the survey files of `config.data`, a fixed held-out split, the train pipeline.

The held-out split is `config.data.val_size` records chosen by a permutation seeded with
`config.data.split_seed` (independent of the training seed), so every run of a config evaluates
on the same galaxies; the training pipeline reads the rest. With `config.data.split` (the name of
a split of an ingested survey, e.g. "pretrain", `lvm_jax.ingest.splits`) only that split's
records are used, held-out ones included, so galaxies of the other splits are never seen.
"""

from __future__ import annotations

import glob
import pathlib
from typing import Any, Sequence

import numpy as np

from lvm_jax.data import pipeline as pipeline_lib
from lvm_jax.data.augment import Augmentation
from lvm_jax.data.hdf5_source import SslLegacySurveySource
from lvm_jax.data.preprocess import Preprocessing, apply_preprocessing


class Subset:
  """Records `indices` of a random-access source, re-indexed 0..len-1 (picklable)."""

  def __init__(self, source, indices: Sequence[int]):
    self.source = source
    self.indices = np.asarray(indices, dtype=np.int64)

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i: int) -> dict[str, Any]:
    return self.source[int(self.indices[int(i)])]


def survey_paths(files) -> list[str]:
  patterns = [files] if isinstance(files, str) else list(files)
  paths = sorted(p for pattern in patterns for p in glob.glob(pattern))
  if not paths:
    raise FileNotFoundError(f"no survey files match {patterns} (set --config.data.files)")
  return paths


def image_kind(data_config) -> str:
  """'flux' or 'display_rgb': the kind an ingested survey's manifest records (flux otherwise)."""
  from lvm_jax.ingest.layout import survey_image_kind
  folders = {pathlib.Path(p).parent for p in survey_paths(data_config.files)}
  kinds = {survey_image_kind(folder) or "flux" for folder in folders}  # one manifest a folder
  if len(kinds) > 1:
    raise ValueError(f"data.files mixes image kinds {sorted(kinds)}; train on one kind")
  return kinds.pop()


def preprocessing(data_config, image_size: int) -> Preprocessing:
  p = dict(data_config.preprocessing)
  p["out_size"] = image_size
  return Preprocessing(**p)


def split(num_records: int, val_size: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, held-out indices), both sorted."""
  if not 0 <= val_size < num_records:
    raise ValueError(f"val_size {val_size} must be in [0, {num_records})")
  perm = np.random.default_rng([split_seed]).permutation(num_records)
  return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def split_records(source: SslLegacySurveySource, paths: Sequence[str], name: str) -> np.ndarray:
  """Sorted record indices of `source` whose ids are in split `name` of the ingested folder(s)
  holding `paths`; a ValueError names the folder when it has no such split or an id of the
  split is not among the records."""
  from lvm_jax.ingest import splits as ingest_splits
  from lvm_jax.ingest.layout import read_manifest
  wanted: set[str] = set()
  for folder in sorted({pathlib.Path(p).parent for p in paths}):
    if read_manifest(folder) is None:
      raise ValueError(f"data.split={name!r} needs an ingested survey (`lvm-jax ingest`); "
                       f"{folder} has no ingest manifest")
    try:
      wanted.update(ingest_splits.read_split(folder, name))
    except FileNotFoundError as e:
      raise ValueError(f"{folder}: no split {name!r} ({e.filename} is missing)") from e
  ids = source.ids()
  rows = np.array([i for i, k in enumerate(ids) if k in wanted], np.int64)
  missing = wanted.difference(ids)
  if missing:
    raise ValueError(f"split {name!r}: {len(missing)} ids are not in data.files, e.g. "
                     f"{sorted(missing)[:3]}")
  return rows


def make_sources(data_config):
  """(train source, held-out source with the class column if any)."""
  paths = survey_paths(data_config.files)
  columns = (data_config.class_column,) if data_config.class_column else ()
  source = SslLegacySurveySource(paths, columns=columns)
  records = np.arange(len(source))
  if data_config.get("split"):
    records = split_records(source, paths, str(data_config.split))
  train_idx, val_idx = split(len(records), int(data_config.val_size), int(data_config.split_seed))
  return Subset(source, records[train_idx]), Subset(source, records[val_idx])


def make_train_pipeline(data_config, train_source, image_size: int, global_batch_size: int,
                        seed: int):
  augment = (Augmentation(max_shift=int(data_config.max_shift), dihedral=True)
             if data_config.augment else False)
  return pipeline_lib.make_pipeline(
      train_source, preprocessing=preprocessing(data_config, image_size),
      global_batch_size=global_batch_size, seed=seed, shuffle=True, augment=augment,
      num_epochs=None, worker_count=int(data_config.worker_count))


def load_eval_set(data_config, val_source, image_size: int, limit: int | None = None
                  ) -> dict[str, np.ndarray]:
  """The held-out images, preprocessed without augmentation: image (n, S, S, 3), label (n,)."""
  prep = preprocessing(data_config, image_size)
  n = len(val_source) if limit is None else min(limit, len(val_source))
  images = np.empty((n, image_size, image_size, 3), np.float32)
  labels = np.full(n, -1, np.int64)
  for i in range(n):
    record = val_source[i]
    images[i] = apply_preprocessing(prep, np.asarray(record["image"]))[0]
    if data_config.class_column:
      labels[i] = int(record[data_config.class_column])
  return {"image": images, "label": labels}
