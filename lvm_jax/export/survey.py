"""`export_survey`: embeddings for every galaxy of a survey source, in resumable Parquet chunks.

Chunk k is the source records [k * chunk_size, (k + 1) * chunk_size) (`chunks`: rounds, part
files, manifest, consolidation). All processes step through the same number of rounds and the
same number of batches per chunk, so the sharded forward passes stay in lockstep. Within a
chunk, images are read, validated and preprocessed (`records`) by a thread pool one chunk ahead
of the device, then embedded in batches of `batch` (global) images. The settings are in
`settings`, the layout and schema in `lvm_jax.export.schema`, resume in
`lvm_jax.export.manifest`. The names that lived here stay importable from this module.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import math
import os
import pathlib
import signal
import time
from typing import Any, Callable, Iterator, Sequence

import jax
import numpy as np

from lvm_jax import checkpoint
from lvm_jax import locks
from lvm_jax import provenance
from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.export import inference
from lvm_jax.export import manifest as manifest_lib
from lvm_jax.export import schema
from lvm_jax.export import sources
from lvm_jax.export.chunks import (REJECTS_PARTS, ChunkWriter, chunk_indices, finish,
                                   record_round, rounds, sync)
from lvm_jax.export.records import Prepared, Preparer, carried_types, check_image_kind, check_text
from lvm_jax.export.settings import ExportSettings

# Test hook: SIGKILL this process after the N-th chunk's part file is renamed into place, before
# the manifest lists it (the worst moment for a crash).
CRASH_ENV = "LVM_JAX_EXPORT_CRASH_AFTER_CHUNKS"
# The names these had when they lived here.
_Prepared, _Preparer, _ChunkWriter = Prepared, Preparer, ChunkWriter
_chunk_indices, _rounds, _sync, _record_round, _finish = (chunk_indices, rounds, sync,
                                                          record_round, finish)
_check_image_kind, _carried_types = check_image_kind, carried_types
__all__ = ["CRASH_ENV", "REJECTS_PARTS", "ExportSettings", "check_text", "export_survey"]


def export_survey(checkpoint_dir: str | os.PathLike, data: str | os.PathLike,
                  out: str | os.PathLike, settings: ExportSettings = ExportSettings(), *,
                  devices: Sequence[jax.Device] | None = None, step: int | None = None,
                  progress: bool = True) -> dict[str, Any]:
  """Embeds every image of `data` with the checkpoint's encoder into `out`; returns the summary.

  Rerunning the same call after a crash continues from the manifest (see `manifest`).
  Raises `galaxy10.ImageKindError` for display-RGB images and a flux model, ValueError when the
  preprocessing of pre-cropped data or the image size disagrees with the checkpoint.
  """
  out = pathlib.Path(out)
  if jax.process_index() == 0:
    out.mkdir(parents=True, exist_ok=True)
  with locks.hold(out / locks.LOCK_NAME, f"export folder {out}",
                  enabled=jax.process_index() == 0):
    return _export(checkpoint_dir, data, out, settings, devices, step, progress)


def _export(checkpoint_dir, data, out: pathlib.Path, settings: ExportSettings, devices,
            step: int | None, progress: bool) -> dict[str, Any]:
  started = time.time()
  step = checkpoint.resolve_step(checkpoint_dir, step, fallback=settings.fallback)
  meta = checkpoint.read_json(checkpoint_dir, "meta", step)
  source = sources.open_source(data, settings.carry, settings.allow_nonfloat)
  check_text(source)
  check_image_kind(source, meta, settings.allow_display_rgb)
  preprocessing = Preprocessing.from_dict(meta["preprocessing"])
  fast = bool(meta.get("fast_resize", False)) if settings.fast_resize is None \
      else settings.fast_resize
  preparer = Preparer(source, preprocessing, fast)

  encoder = inference.Encoder.from_checkpoint(
      checkpoint_dir, global_batch=settings.batch, embedding=settings.embedding,
      compute_dtype=settings.compute_dtype, decoder=settings.decoder, devices=devices, step=step)
  if preprocessing.out_size != encoder.image_size:
    raise ValueError(f"preprocessing makes {preprocessing.out_size} px inputs, the model takes "
                     f"{encoder.image_size} px")
  dim = encoder.embedding_dim()
  n = len(source)
  num_chunks = math.ceil(n / settings.chunk_size)
  fingerprint = {
      "checkpoint": str(pathlib.Path(checkpoint_dir).resolve()), "step": encoder.step,
      "data": source.describe(), "preprocessing": preprocessing.to_dict(), "fast_resize": fast,
      "settings": {k: v for k, v in dataclasses.asdict(settings).items()
                   if k not in ("workers", "overwrite", "formats", "fallback")
                   and not (k == "allow_nonfloat" and not v)},
      "devices": encoder.mesh.devices.size, "processes": jax.process_count()}
  metadata = provenance.provenance(
      schema_version=schema.SCHEMA_VERSION, model=encoder.config["model"],
      compute_dtype=settings.compute_dtype,
      checkpoint={"path": fingerprint["checkpoint"], "step": encoder.step},
      preprocessing=preprocessing.to_dict(), fast_resize=fast,
      embedding={"kind": settings.embedding, "dim": dim, "dtype": settings.dtype,
                 "definition": schema.EMBEDDING_DEFINITIONS[settings.embedding]},
      decoder=settings.decoder, carry=list(settings.carry), data=source.describe())
  part_schema = schema.embedding_schema(dim, settings.dtype, carried_types(source, preparer),
                                        settings.decoder, metadata)

  writer = ChunkWriter(out, part_schema, settings.dtype)
  if jax.process_index() == 0:
    for d in (out, writer.parts, writer.rejects):
      d.mkdir(parents=True, exist_ok=True)
      for stale in d.glob(".*.tmp-*"):  # half-written files of a killed run
        stale.unlink()
    if settings.overwrite:  # an earlier export's files must not mix with this one's
      for old in [*writer.parts.glob("part-*.parquet"), *writer.rejects.glob("chunk-*.parquet"),
                  out / schema.REJECTS_FILE, *out.glob("embeddings.*")]:
        old.unlink(missing_ok=True)
  sync("lvm_jax.export.mkdir")
  manifest = manifest_lib.Manifest.open(out / schema.MANIFEST_FILE, fingerprint,
                                        settings.chunk_size, num_chunks, settings.overwrite)
  if jax.process_index() == 0:
    manifest.save()
  remaining = [k for k in range(num_chunks) if k not in manifest.done()]
  todo = rounds(remaining)
  images_todo = sum(len(chunk_indices(k, settings.chunk_size, n)) for k in todo if k is not None)

  bar = _progress_bar(images_todo, progress and jax.process_index() == 0)
  crash_after = int(os.environ.get(CRASH_ENV, "0"))
  finished = 0
  loop_started = time.time()
  with concurrent.futures.ThreadPoolExecutor(max(1, settings.workers)) as pool:
    for r, (k, prepared) in enumerate(_prefetched(pool, preparer, todo, settings.chunk_size, n)):
      rows, outputs, rejects = _embed_chunk(encoder, prepared, settings.chunk_size, bar.update)
      if k is not None:
        writer.write(k, rows, outputs, rejects)
        finished += 1
        if crash_after and finished == crash_after:
          os.kill(os.getpid(), signal.SIGKILL)
      count = jax.process_count()
      record_round(manifest, writer, remaining[r * count:(r + 1) * count])
  bar.close()
  timing = {"seconds_this_run": time.time() - started,
            "seconds_embedding": time.time() - loop_started}
  return finish(out, manifest, writer, settings, num_chunks, timing, n, images_todo)


def _progress_bar(total: int, enabled: bool):
  from tqdm.auto import tqdm
  return tqdm(total=total, unit="img", desc="export", disable=not enabled, smoothing=0.1)


def _prefetched(pool, preparer: Preparer, todo: list[int | None], chunk_size: int, n: int
                ) -> Iterator[tuple[int | None, list[Prepared]]]:
  """(chunk, prepared records) for each round, the next chunk's reading already submitted."""
  def submit(k):
    return [] if k is None else [pool.submit(preparer, i) for i in chunk_indices(k, chunk_size, n)]
  pending = submit(todo[0]) if todo else []
  for r, k in enumerate(todo):
    current = pending
    pending = submit(todo[r + 1]) if r + 1 < len(todo) else []
    yield k, [f.result() for f in current]


def _embed_chunk(encoder: inference.Encoder, prepared: list[Prepared], chunk_size: int,
                 progress: Callable[[int], Any], in_flight: int = 4):
  """Embeds a chunk's good images in zero-padded batches: (rows, outputs, rejects).

  Up to `in_flight` batches are dispatched before the oldest is fetched, so the device works
  while the host copies results; `progress(n)` is told of every n records done.
  """
  good = [p for p in prepared if p.image is not None]
  rejects = [p.reject for p in prepared if p.reject is not None]
  progress(len(rejects))
  b = encoder.local_batch
  steps = math.ceil(len(good) / b)
  if jax.process_count() > 1:  # every process runs the same number of forward passes
    steps = math.ceil(chunk_size / b)
  shape = (encoder.image_size, encoder.image_size, encoder.module.in_chans)
  pending: collections.deque = collections.deque()
  fetched = []

  def fetch_oldest():
    outputs, count = pending.popleft()
    fetched.append(inference.fetch(outputs))
    progress(count)

  for s in range(steps):
    batch = np.zeros((b, *shape), np.float32)
    members = good[s * b:(s + 1) * b]
    for j, p in enumerate(members):
      batch[j] = p.image
    pending.append((encoder.submit(batch), len(members)))
    if len(pending) >= in_flight:
      fetch_oldest()
  while pending:
    fetch_oldest()
  outputs = {key: np.concatenate([f[key] for f in fetched])[:len(good)]
             for key in (fetched[0] if fetched else {})}
  return [p.row for p in good], outputs, rejects
