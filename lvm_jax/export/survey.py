"""`export_survey`: embeddings for every galaxy of a survey source, in resumable Parquet chunks.

Chunk k is the source records [k * chunk_size, (k + 1) * chunk_size). Process p of P takes the
unfinished chunks p, p + P, ...; all processes step through the same number of rounds (padding
with empty chunks) and the same number of batches per chunk, so the sharded forward passes stay
in lockstep. Within a chunk, images are read, validated and preprocessed by a thread pool one
chunk ahead of the device, then embedded in batches of `batch` (global) images.
The layout and schema are in `lvm_jax.export.schema`; resume in `lvm_jax.export.manifest`.
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
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_jax import checkpoint
from lvm_jax import provenance
from lvm_jax.data import galaxy10
from lvm_jax.data.pipeline import apply_preprocessing
from lvm_jax.data.preprocess import Preprocessing
from lvm_jax.data.validate import BadImageError, UnreadableFileError, validate_image
from lvm_jax.configs import export as export_config
from lvm_jax.export import inference
from lvm_jax.export import manifest as manifest_lib
from lvm_jax.export import schema
from lvm_jax.export import sources

# Test hook: SIGKILL this process after the N-th chunk's part file is renamed into place, before
# the manifest lists it (the worst moment for a crash).
CRASH_ENV = "LVM_JAX_EXPORT_CRASH_AFTER_CHUNKS"
REJECTS_PARTS = ".rejects"
# The one set of defaults: the packaged `export` config (`lvm-jax export` without --config).
_DEFAULTS = export_config.get_config()


@dataclasses.dataclass(frozen=True)
class ExportSettings:
  """What `lvm-jax export` does; defaults from the packaged `export` config (`lvm_jax/configs`).

  batch: global batch (images per forward pass, a multiple of the device count).
  chunk_size: source records per part file (the unit of resume).
  embedding: 'mean', 'authors' or 'multiscale' (`schema.EMBEDDINGS`).
  dtype: stored embedding dtype, 'float32' or 'float16'.
  compute_dtype: network compute dtype, 'bfloat16' or 'float32' (overrides the checkpoint's).
  decoder: also run the decoder and store `recon_mse`.
  carry: catalogue columns copied to the output.
  formats: extra copies written when complete: 'fits', 'votable'.
  workers: host threads reading and preprocessing images.
  fast_resize: `pipeline.fast_resize` (True) or skimage (False); None: as the checkpoint's meta
    records (`fast_resize`, default False: the authors' exact resize).
  allow_display_rgb: embed display-RGB images (Galaxy10) with a flux model anyway.
  overwrite: start again even if OUT holds an export with other settings.
  """

  batch: int = _DEFAULTS.batch
  chunk_size: int = _DEFAULTS.chunk_size
  embedding: str = _DEFAULTS.embedding
  dtype: str = _DEFAULTS.dtype
  compute_dtype: str = _DEFAULTS.compute_dtype
  decoder: bool = _DEFAULTS.decoder
  carry: tuple[str, ...] = tuple(_DEFAULTS.carry)
  formats: tuple[str, ...] = tuple(_DEFAULTS.formats)
  workers: int = _DEFAULTS.workers
  fast_resize: bool | None = _DEFAULTS.fast_resize
  allow_display_rgb: bool = _DEFAULTS.allow_display_rgb
  overwrite: bool = False

  @classmethod
  def from_config(cls, spec: str = "export", **fields) -> "ExportSettings":
    """The settings of a config (`export`, `export:cpu` or a file path.py[:arg]), then `fields`."""
    from lvm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
    values = config_lib.load_config(spec).to_dict()
    values.update(fields)
    for key in ("carry", "formats"):
      values[key] = tuple(values.get(key) or ())
    return cls(**values)

  def __post_init__(self):
    if self.embedding not in schema.EMBEDDINGS:
      raise ValueError(f"embedding must be one of {schema.EMBEDDINGS}, got {self.embedding!r}")
    if self.dtype not in schema.EMBEDDING_DTYPES:
      raise ValueError(f"dtype must be one of {sorted(schema.EMBEDDING_DTYPES)}")
    unknown = set(self.formats) - {"fits", "votable"}
    if unknown:
      raise ValueError(f"unknown formats {sorted(unknown)}; known: fits, votable")
    if self.chunk_size <= 0 or self.batch <= 0:
      raise ValueError("batch and chunk_size must be positive")


@dataclasses.dataclass
class _Prepared:
  """One record after reading, validation and preprocessing (image None when rejected)."""

  row: dict[str, Any]
  image: np.ndarray | None = None
  reject: dict[str, Any] | None = None


class _Preparer:
  """Reads record i of the source, validates it and preprocesses it as the checkpoint wants."""

  def __init__(self, source: sources.ExportSource, preprocessing: Preprocessing, fast: bool):
    self.source = source
    self.preprocessing = preprocessing
    self.passthrough = sources.input_preprocessing(source, preprocessing)
    self.fast = fast

  def __call__(self, index: int) -> _Prepared:
    where = {"id": "", "source_file": str(self.source.path), "source_index": int(index)}
    try:
      record = self.source.record(index)
      where = {"id": str(record["id"]), "source_file": str(record["source_file"]),
               "source_index": int(record["source_index"])}
      image = validate_image(record["image"], source=where["source_file"],
                             index=where["source_index"])
    except (BadImageError, UnreadableFileError) as e:
      return _Prepared(where, reject={**where, "reason": e.reason, "detail": str(e)})
    scale = float(record.get("arcsec_per_pixel", 0.262)) if self.passthrough is None else 0.262
    out, info = apply_preprocessing(self.passthrough or self.preprocessing, image,
                                    fast=self.fast, pixel_scale=scale)
    box, arcsec = info["box"], info["arcsec_per_pixel"]
    if self.passthrough is not None:  # pre-cropped: the geometry of the original crop
      box, arcsec = tuple(int(v) for v in record["box"]), float(record["arcsec_per_pixel"])
    row = {**where, "ra": float(record.get("ra", np.nan)), "dec": float(record.get("dec", np.nan)),
           "box": box, "arcsec_per_pixel": arcsec, "mask_flags": int(record["mask_flags"])}
    for name in self.source.carry:
      row[schema.column_name(name)] = record[name]
    return _Prepared(row, image=out)


def _check_image_kind(source: sources.ExportSource, meta: dict[str, Any], allow: bool) -> None:
  galaxy10.check_image_kind(source.image_kind, meta.get("image_kind", galaxy10.FLUX),
                            allow_display_rgb=allow)


def _chunk_indices(k: int, chunk_size: int, n: int) -> range:
  return range(k * chunk_size, min(n, (k + 1) * chunk_size))


def _rounds(remaining: Sequence[int]) -> list[int | None]:
  """This process's chunk in each round (None: an empty chunk to stay in lockstep)."""
  p, count = jax.process_index(), jax.process_count()
  rounds = math.ceil(len(remaining) / count)
  return [remaining[r * count + p] if r * count + p < len(remaining) else None
          for r in range(rounds)]


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


class _ChunkWriter:
  """Builds and writes a chunk's part file and its rejects, atomically."""

  def __init__(self, out: pathlib.Path, part_schema: pa.Schema, dtype: str):
    self.parts = out / schema.PARTS_DIR
    self.rejects = out / REJECTS_PARTS
    self.schema = part_schema
    self.np_dtype = np.float16 if dtype == "float16" else np.float32

  def part_path(self, k: int) -> pathlib.Path:
    return self.parts / f"part-{k:05d}.parquet"

  def reject_path(self, k: int) -> pathlib.Path:
    return self.rejects / f"chunk-{k:05d}.parquet"

  def write(self, k: int, rows: list[dict[str, Any]], outputs: dict[str, np.ndarray],
            rejects: list[dict[str, Any]]) -> None:
    arrays = []
    for field in self.schema:
      if not rows:
        arrays.append(pa.array([], type=field.type))
        continue
      if field.name == "embedding":
        values = outputs["embedding"].astype(self.np_dtype)
      elif field.name == "recon_mse":
        values = outputs["recon_mse"].astype(np.float32)
      else:
        values = [r[field.name] for r in rows]
      arrays.append(schema.column_array(values, field.type))
    table = pa.Table.from_arrays(arrays, schema=self.schema)
    manifest_lib.atomic_write(self.part_path(k), lambda tmp: pq.write_table(table, tmp))
    rejects_table = pa.Table.from_pylist(rejects, schema=schema.REJECTS_SCHEMA)
    manifest_lib.atomic_write(self.reject_path(k), lambda tmp: pq.write_table(rejects_table, tmp))


def _carried_types(source: sources.ExportSource, preparer: _Preparer) -> dict[str, pa.DataType]:
  """Arrow types of the carried columns, from the first good record."""
  if not source.carry:
    return {}
  for i in range(len(source)):
    prepared = preparer(i)
    if prepared.image is not None:
      names = [schema.column_name(c) for c in source.carry]
      return {name: schema.arrow_type(np.asarray([prepared.row[name]])) for name in names}
  raise ValueError(f"{source.path}: no valid image to take the carried columns' types from")


def export_survey(checkpoint_dir: str | os.PathLike, data: str | os.PathLike,
                  out: str | os.PathLike, settings: ExportSettings = ExportSettings(), *,
                  devices: Sequence[jax.Device] | None = None, step: int | None = None,
                  progress: bool = True) -> dict[str, Any]:
  """Embeds every image of `data` with the checkpoint's encoder into `out`; returns the summary.

  Rerunning the same call after a crash continues from the manifest (see `manifest`).
  Raises `galaxy10.ImageKindError` for display-RGB images and a flux model, ValueError when the
  preprocessing of pre-cropped data or the image size disagrees with the checkpoint.
  """
  started = time.time()
  out = pathlib.Path(out)
  meta = checkpoint.read_json(checkpoint_dir, "meta", step)
  source = sources.open_source(data, settings.carry)
  _check_image_kind(source, meta, settings.allow_display_rgb)
  preprocessing = Preprocessing.from_dict(meta["preprocessing"])
  fast = bool(meta.get("fast_resize", False)) if settings.fast_resize is None \
      else settings.fast_resize
  preparer = _Preparer(source, preprocessing, fast)

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
                   if k not in ("workers", "overwrite", "formats")},
      "devices": encoder.mesh.devices.size, "processes": jax.process_count()}
  metadata = provenance.provenance(
      schema_version=schema.SCHEMA_VERSION, model=encoder.config["model"],
      compute_dtype=settings.compute_dtype,
      checkpoint={"path": fingerprint["checkpoint"], "step": encoder.step},
      preprocessing=preprocessing.to_dict(), fast_resize=fast,
      embedding={"kind": settings.embedding, "dim": dim, "dtype": settings.dtype,
                 "definition": schema.EMBEDDING_DEFINITIONS[settings.embedding]},
      decoder=settings.decoder, carry=list(settings.carry), data=source.describe())
  part_schema = schema.embedding_schema(dim, settings.dtype, _carried_types(source, preparer),
                                        settings.decoder, metadata)

  writer = _ChunkWriter(out, part_schema, settings.dtype)
  if jax.process_index() == 0:
    for d in (out, writer.parts, writer.rejects):
      d.mkdir(parents=True, exist_ok=True)
      for stale in d.glob(".*.tmp-*"):  # half-written files of a killed run
        stale.unlink()
    if settings.overwrite:  # an earlier export's files must not mix with this one's
      for old in [*writer.parts.glob("part-*.parquet"), *writer.rejects.glob("chunk-*.parquet"),
                  out / schema.REJECTS_FILE, *out.glob("embeddings.*")]:
        old.unlink(missing_ok=True)
  _sync("lvm_jax.export.mkdir")
  manifest = manifest_lib.Manifest.open(out / schema.MANIFEST_FILE, fingerprint,
                                        settings.chunk_size, num_chunks, settings.overwrite)
  if jax.process_index() == 0:
    manifest.save()
  remaining = [k for k in range(num_chunks) if k not in manifest.done()]
  todo = _rounds(remaining)
  images_todo = sum(len(_chunk_indices(k, settings.chunk_size, n)) for k in todo if k is not None)

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
      _record_round(manifest, writer, remaining[r * count:(r + 1) * count])
  bar.close()
  timing = {"seconds_this_run": time.time() - started,
            "seconds_embedding": time.time() - loop_started}
  return _finish(out, manifest, writer, settings, num_chunks, timing, n, images_todo)


def _progress_bar(total: int, enabled: bool):
  from tqdm.auto import tqdm
  return tqdm(total=total, unit="img", desc="export", disable=not enabled, smoothing=0.1)


def _prefetched(pool, preparer: _Preparer, todo: list[int | None], chunk_size: int, n: int
                ) -> Iterator[tuple[int | None, list[_Prepared]]]:
  """(chunk, prepared records) for each round, the next chunk's reading already submitted."""
  def submit(k):
    return [] if k is None else [pool.submit(preparer, i) for i in _chunk_indices(k, chunk_size, n)]
  pending = submit(todo[0]) if todo else []
  for r, k in enumerate(todo):
    current = pending
    pending = submit(todo[r + 1]) if r + 1 < len(todo) else []
    yield k, [f.result() for f in current]


def _embed_chunk(encoder: inference.Encoder, prepared: list[_Prepared], chunk_size: int,
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


def _record_round(manifest: manifest_lib.Manifest, writer: _ChunkWriter,
                  round_chunks: Sequence[int]) -> None:
  """After a round: process 0 lists the round's chunks (all processes') once their files exist."""
  _sync(f"lvm_jax.export.round.{round_chunks[0] if round_chunks else 'empty'}")
  if jax.process_index() != 0:
    return
  for chunk in round_chunks:
    if not writer.part_path(chunk).exists():
      raise RuntimeError(f"chunk {chunk}: {writer.part_path(chunk)} is missing after its round")
    rows = pq.read_metadata(writer.part_path(chunk)).num_rows
    rejects = pq.read_metadata(writer.reject_path(chunk)).num_rows
    manifest.mark_done(chunk, rows, rejects)
  manifest.save()


def _finish(out: pathlib.Path, manifest: manifest_lib.Manifest, writer: _ChunkWriter,
            settings: ExportSettings, num_chunks: int, timing: dict[str, float], n: int,
            images_this_run: int) -> dict[str, Any]:
  """Consolidates the rejects, writes the optional copies and the summary (process 0).

  timing: `seconds_this_run` (from the start, restore and compilation included) and
  `seconds_embedding` (the read-preprocess-encode-write loop only).
  """
  _sync("lvm_jax.export.done")
  if jax.process_index() != 0:
    return {}
  missing = sorted(set(range(num_chunks)) - manifest.done())
  if missing:
    raise RuntimeError(f"chunks {missing[:10]} are not finished; rerun the same command")
  tables = [pq.read_table(writer.reject_path(k)) for k in range(num_chunks)]
  rejects = pa.concat_tables(tables) if tables else schema.REJECTS_SCHEMA.empty_table()
  manifest_lib.atomic_write(out / schema.REJECTS_FILE, lambda tmp: pq.write_table(rejects, tmp))
  reasons = collections.Counter(rejects.column("reason").to_pylist())
  done = manifest.data["done"]
  summary = {"records": n, "rows": sum(d["rows"] for d in done.values()),
             "rejects": int(rejects.num_rows), "reject_reasons": dict(reasons),
             "chunks": num_chunks, "images_this_run": images_this_run,
             "seconds_this_run": round(timing["seconds_this_run"], 2),
             "images_per_second_this_run":
                 round(images_this_run / timing["seconds_this_run"], 2),
             "images_per_second_embedding":
                 round(images_this_run / max(timing["seconds_embedding"], 1e-9), 2)}
  if settings.formats:
    from lvm_jax.export import tables as tables_lib
    summary["formats"] = [str(p) for p in tables_lib.write_formats(out, settings.formats)]
  manifest.data["complete"] = True
  manifest.data["summary"] = summary
  manifest.save()
  return summary
