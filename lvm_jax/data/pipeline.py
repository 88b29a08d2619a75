"""Grain pipelines for pretraining: a global seeded record order cut into process-invariant batches.

The order of records is a pure function of (seed, epoch): epoch e is a permutation of the N global
record indices drawn from `np.random.default_rng([seed, e])`. Each epoch is cut into global batches
of B rows; process p of P takes rows [p B / P, (p + 1) B / P) of every global batch, so global batch
k is the same records in the same order whatever P is, and every process runs the same number of
steps. The epoch's remainder N mod B is dropped (`drop_remainder=True`, counted in
`PretrainingPipeline.dropped_per_epoch`) or padded with rows whose `valid` is False.

Every random choice for a record (translation, dihedral k) comes from
`np.random.default_rng([seed, epoch, index])`, never from a worker, so pixels do not depend on the
worker count. Batch k is a pure function of (seed, k): `lvm_jax.train.input.GlobalBatchIterator`
(also importable from here) resumes from a step number, with host-to-device prefetch, and its
state is a small JSON dict. The resize helpers live in `lvm_jax.data.preprocess` and
`Augmentation` in `lvm_jax.data.augment`; both stay importable from here.

Batches (per process, b = B / P rows) are dicts of NumPy arrays:
  image (b, S, S, 3) float32, index (b,) int64 (global record index, -1 on padding rows),
  valid (b,) bool, epoch (b,) int32, dihedral (b,) int8 (k applied, -1 for none),
  box (b, 4) int32 (x0, y0, x1, y1 of the crop in input pixels), arcsec_per_pixel (b,) float32.
A record's string id is `source[index]["id"]`; strings are kept out of batches.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Iterator

from absl import flags as absl_flags
import cv2
import grain
import jax
import numpy as np

from lvm_jax.data import galaxy10
from lvm_jax.data import preprocess
from lvm_jax.data.augment import Augmentation
from lvm_jax.data.preprocess import (Preprocessing, apply_preprocessing, fast_resize,  # noqa: F401
                                     resize_matrix)
from lvm_jax.data.validate import BadImageError, Quarantine, UnreadableFileError, validate_image

_INFINITE_STEPS = 2**40  # the step count of a pipeline with num_epochs=None


def plainly_valid(image: np.ndarray) -> bool:
  """True only if `validate.validate_image(image)` (defaults) would pass; ~20x cheaper.

  Per-band min < max, both finite (NaN propagates through min/max) implies finite, not all zero,
  not constant, no constant band. False means "run the full check", not necessarily bad.
  """
  if image.ndim != 3 or image.shape[-1] != 3 or image.size == 0:
    return False
  rows = image.reshape(image.shape[0], -1)  # (H, W * 3): reductions along contiguous rows
  lo = rows.min(axis=0).reshape(-1, 3).min(axis=0)
  hi = rows.max(axis=0).reshape(-1, 3).max(axis=0)
  return bool(np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all())


# --- The global order ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _epoch_permutation(num_records: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
  if not shuffle:
    return np.arange(num_records, dtype=np.int64)
  return np.random.default_rng([seed, epoch]).permutation(num_records).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class GlobalOrder:
  """Which global record fills row r of global batch k; independent of the process count.

  steps_per_epoch is N // B (drop_remainder) or ceil(N / B) (padding); a position past N in an
  epoch is a padding row (record index -1).
  """

  num_records: int
  global_batch_size: int
  seed: int
  shuffle: bool = True
  drop_remainder: bool = True

  def __post_init__(self):
    if self.global_batch_size <= 0:
      raise ValueError(f"global_batch_size must be positive, got {self.global_batch_size}")
    if self.drop_remainder and self.num_records < self.global_batch_size:
      raise ValueError(f"{self.num_records} records cannot fill one global batch of "
                       f"{self.global_batch_size} with drop_remainder=True")

  @property
  def steps_per_epoch(self) -> int:
    n, b = self.num_records, self.global_batch_size
    return n // b if self.drop_remainder else -(-n // b)

  @property
  def dropped_per_epoch(self) -> int:
    return self.num_records - self.steps_per_epoch * self.global_batch_size if (
        self.drop_remainder) else 0

  @property
  def padded_per_epoch(self) -> int:
    return 0 if self.drop_remainder else (
        self.steps_per_epoch * self.global_batch_size - self.num_records)

  def record(self, step: int, row: int) -> tuple[int, int]:
    """(epoch, global record index or -1 for padding) of row `row` of global batch `step`."""
    epoch, k = divmod(int(step), self.steps_per_epoch)
    position = k * self.global_batch_size + int(row)
    if position >= self.num_records:
      return epoch, -1
    permutation = _epoch_permutation(self.num_records, self.seed, epoch, self.shuffle)
    return epoch, int(permutation[position])


# --- Per-record work -----------------------------------------------------------------------------


def _worker_init(worker_index: int, worker_count: int) -> None:
  del worker_index, worker_count
  cv2.setNumThreads(1)  # also set at import of lvm_jax.data.preprocess; spawned workers re-import


@dataclasses.dataclass(frozen=True)
class _RecordLoader:
  """Picklable per-record transform run inside Grain (main process or workers)."""

  source: Any
  preprocessing: Preprocessing
  augmentation: Augmentation | None
  seed: int
  skip_bad: bool
  fast_resize: bool
  allow_display_rgb: bool = False

  def _padding(self, epoch: int, index: int) -> dict[str, Any]:
    s = self.preprocessing.out_size
    return {"image": np.zeros((s, s, 3), np.float32), "index": np.int64(index),
            "valid": np.bool_(False), "epoch": np.int32(epoch), "dihedral": np.int8(-1),
            "box": np.zeros(4, np.int32), "arcsec_per_pixel": np.float32(0)}

  def load(self, index: int) -> tuple[dict[str, Any], np.ndarray]:
    """(source record, validated image); errors are BadImageError / UnreadableFileError."""
    record = self.source[index]
    galaxy10.check_image_kind(record.get("kind", galaxy10.FLUX),
                              allow_display_rgb=self.allow_display_rgb)
    image = np.asarray(record["image"])
    if not plainly_valid(image):  # the full check, for its error message
      validate_image(image, source=str(record.get("source_file", "")),
                     index=record.get("source_index"))
    return record, image

  def __call__(self, epoch: int, index: int) -> dict[str, Any]:
    if index < 0:
      return self._padding(epoch, index)
    try:
      record, image = self.load(index)
    except (BadImageError, UnreadableFileError) as e:
      if self.skip_bad:
        return self._padding(epoch, index)
      raise BadImageError(f"{e} (global record {index})", reason=getattr(e, "reason", "unreadable"),
                          source=getattr(e, "source", getattr(e, "path", "")), index=index) from e
    rng = np.random.default_rng([self.seed, epoch, index])
    if self.augmentation is not None:
      image = self.augmentation.apply_to_stamp(image, rng)
    pixel_scale = float(record.get("arcsec_per_pixel", preprocess.ssl_schema.PIXEL_SCALE_ARCSEC))
    out, info = apply_preprocessing(self.preprocessing, image, fast=self.fast_resize,
                                    pixel_scale=pixel_scale)
    k = -1
    if self.augmentation is not None:
      out, k = self.augmentation.apply_to_output(out, rng)
    return {"image": np.ascontiguousarray(out, dtype=np.float32), "index": np.int64(index),
            "valid": np.bool_(True), "epoch": np.int32(epoch), "dihedral": np.int8(k),
            "box": np.asarray(info["box"], np.int32),
            "arcsec_per_pixel": np.float32(info["arcsec_per_pixel"])}


@dataclasses.dataclass(frozen=True)
class _SlotLoader:
  """Maps a per-process slot number (step * b + row) to that row's record."""

  order: GlobalOrder
  loader: _RecordLoader
  process_index: int
  local_batch_size: int

  def __call__(self, slot: int) -> dict[str, Any]:
    step, row = divmod(int(slot), self.local_batch_size)
    epoch, index = self.order.record(step, self.process_index * self.local_batch_size + row)
    return self.loader(epoch, index)


# --- The pipeline --------------------------------------------------------------------------------


class PretrainingPipeline:
  """One process's share of the global batches; `dataset[k]` is this process's part of batch k.

  Attributes:
    dataset: `grain.MapDataset` of per-process batches (dicts described in the module doc).
    order: the `GlobalOrder` (steps_per_epoch, dropped_per_epoch, padded_per_epoch).
    num_steps: total steps (None: endless, num_epochs=None).
    global_batch_size, local_batch_size, process_index, process_count, seed.
  """

  def __init__(self, source, *, preprocessing: Preprocessing, global_batch_size: int, seed: int,
               shuffle: bool = True, augment: bool | Augmentation = True,
               num_epochs: int | None = None, process_index: int | None = None,
               process_count: int | None = None, drop_remainder: bool = True,
               worker_count: int = 0, quarantine: Quarantine | None = None,
               fast_resize: bool = True, allow_display_rgb: bool = False):
    process_index = jax.process_index() if process_index is None else int(process_index)
    process_count = jax.process_count() if process_count is None else int(process_count)
    if global_batch_size % process_count:
      raise ValueError(f"global_batch_size {global_batch_size} is not divisible by "
                       f"{process_count} processes")
    if not 0 <= process_index < process_count:
      raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    self.source = source
    self.preprocessing = preprocessing
    self.seed = int(seed)
    self.global_batch_size = int(global_batch_size)
    self.process_index, self.process_count = process_index, process_count
    self.local_batch_size = self.global_batch_size // process_count
    self.worker_count = int(worker_count)
    self.quarantine = quarantine
    self._quarantined: set[int] = set()
    self.order = GlobalOrder(len(source), self.global_batch_size, self.seed, shuffle,
                             drop_remainder)
    self.num_steps = None if num_epochs is None else self.order.steps_per_epoch * int(num_epochs)
    augmentation = (Augmentation() if augment is True else augment) or None
    self.loader = _RecordLoader(source, preprocessing, augmentation, self.seed,
                                skip_bad=quarantine is not None, fast_resize=fast_resize,
                                allow_display_rgb=allow_display_rgb)
    steps = _INFINITE_STEPS if self.num_steps is None else self.num_steps
    slots = _SlotLoader(self.order, self.loader, process_index, self.local_batch_size)
    self.dataset = (grain.MapDataset.range(steps * self.local_batch_size).map(slots)
                    .batch(self.local_batch_size, drop_remainder=True))
    if self.order.dropped_per_epoch:
      logging.info("pipeline drops %d of %d records per epoch (global batch %d)",
                   self.order.dropped_per_epoch, len(source), self.global_batch_size)

  def __len__(self) -> int:
    if self.num_steps is None:
      raise TypeError("an endless pipeline (num_epochs=None) has no length")
    return self.num_steps

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    """This process's part of global batch `step` (quarantine updated for its invalid rows)."""
    return self._record_invalid(self.dataset[int(step)])

  def iterate(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Batches start_step, start_step + 1, ...; Grain worker processes when worker_count > 0."""
    if self.worker_count <= 0:
      stop = _INFINITE_STEPS if self.num_steps is None else self.num_steps
      for step in range(int(start_step), stop):
        yield self[step]
      return
    if not absl_flags.FLAGS.is_parsed():  # Grain's workers read absl flags (unparsed under pytest)
      absl_flags.FLAGS.mark_as_parsed()
    ds = self.dataset[int(start_step):].to_iter_dataset(
        grain.ReadOptions(num_threads=1, prefetch_buffer_size=1))
    it = iter(ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.worker_count),
                             worker_init_fn=_worker_init))
    try:
      for batch in it:
        yield self._record_invalid(batch)
    finally:
      it.close()

  def _record_invalid(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Writes each bad record of `batch` once into the quarantine (in the calling process)."""
    if self.quarantine is None:
      return batch
    for index in batch["index"][~batch["valid"]]:
      index = int(index)
      if index < 0 or index in self._quarantined:
        continue
      self._quarantined.add(index)
      try:
        self.loader.load(index)
      except BadImageError as e:
        self.quarantine.add(source_file=e.source, source_index=e.index, id=_record_id(
            self.source, index), reason=e.reason, detail=f"{e} (global record {index})")
      except UnreadableFileError as e:
        self.quarantine.add(source_file=e.path, source_index=None, id="", reason=e.reason,
                            detail=f"{e} (global record {index})")
    return batch

  def summary(self) -> dict[str, Any]:
    """Counts to log: records, steps per epoch, dropped / padded records per epoch."""
    return {"num_records": self.order.num_records, "global_batch_size": self.global_batch_size,
            "steps_per_epoch": self.order.steps_per_epoch,
            "dropped_per_epoch": self.order.dropped_per_epoch,
            "padded_per_epoch": self.order.padded_per_epoch, "num_steps": self.num_steps,
            "process_index": self.process_index, "process_count": self.process_count}


def _record_id(source, index: int) -> str:
  try:
    return str(source[index].get("id", ""))
  except Exception:  # the id is a courtesy in the quarantine; the read error is recorded anyway
    return ""


def make_pipeline(source, *, preprocessing: Preprocessing, global_batch_size: int, seed: int,
                  shuffle: bool = True, augment: bool | Augmentation = True,
                  num_epochs: int | None = None, process_index: int | None = None,
                  process_count: int | None = None, drop_remainder: bool = True,
                  worker_count: int = 0, quarantine: Quarantine | None = None,
                  fast_resize: bool = True, allow_display_rgb: bool = False
                  ) -> PretrainingPipeline:
  """This process's pretraining pipeline over `source` (any random-access record source).

  Args:
    source: `len()` and `source[i]` -> record dict with `image` (H, W, 3) nanomaggies (e.g.
      `SslLegacySurveySource`, `FitsCutoutSource`, `PrecroppedSource`).
    preprocessing: crop/resize/normalisation of each image to (out_size, out_size, 3).
    global_batch_size: rows per global batch B, divisible by the process count.
    seed: the order and every augmentation are functions of it.
    shuffle: a new permutation per epoch; False keeps source order.
    augment: True for `Augmentation()`, False for none, or an `Augmentation`.
    num_epochs: None for endless.
    process_index, process_count: default `jax.process_index()`, `jax.process_count()`.
    drop_remainder: drop the N mod B records left each epoch; False pads with `valid` False rows.
    worker_count: Grain worker processes (0: in the calling thread).
    quarantine: given, bad images become rows with `valid` False and are recorded in it; without,
      the first bad image raises `BadImageError` naming its file, row and global record index.
    fast_resize: use `fast_resize` (matrix form of the skimage resize) instead of skimage.
    allow_display_rgb: accept records of kind "display_rgb" (e.g. Galaxy10); otherwise they raise
      `galaxy10.ImageKindError` (the pipeline's models take fluxes).
  """
  return PretrainingPipeline(
      source, preprocessing=preprocessing, global_batch_size=global_batch_size, seed=seed,
      shuffle=shuffle, augment=augment, num_epochs=num_epochs, process_index=process_index,
      process_count=process_count, drop_remainder=drop_remainder, worker_count=worker_count,
      quarantine=quarantine, fast_resize=fast_resize, allow_display_rgb=allow_display_rgb)


def __getattr__(name: str):
  """`GlobalBatchIterator` moved to `lvm_jax.train.input` (the device side of training)."""
  if name in ("GlobalBatchIterator", "STATE_VERSION"):
    from lvm_jax.train import input as input_lib  # pylint: disable=g-import-not-at-top
    return getattr(input_lib, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
