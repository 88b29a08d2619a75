"""The ingest driver: catalogue + image folder -> an ingested survey folder (`layout`).

Streaming and resumable: catalogue rows are cut into shards of `shard_size` rows; a process pool
(`workers`) reads and checks the files of one shard while the next is read, so memory holds
about two shards of stamps. A shard is done when its record in `.ingest/` exists (written after
its HDF5 file is renamed into place); a rerun with the same options skips done shards and gives
the same files as an uninterrupted run. Output order is the CSV's, whatever the worker count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import pathlib
import shutil
import sys
import time
from typing import Any

import numpy as np

from lvm_jax import locks, provenance
from lvm_jax.data import ssl_schema
from lvm_jax.errors import UserError
from lvm_jax.ingest import catalogue as catalogue_lib
from lvm_jax.ingest import layout, readers, report, splits, writer


@dataclasses.dataclass(frozen=True)
class IngestOptions:
  """Options of one ingest (all but `workers` and `overwrite` are part of its fingerprint).

  kind: 'auto' (from the file suffixes), 'flux' or 'display_rgb'; stamp: output side in px
  (None: the first readable image's size, no resizing); label_column: stratify the splits by it;
  fractions: {split: share}, empty for no splits.
  """

  id_column: str = "id"
  file_column: str = "file"
  ra_column: str = "ra"
  dec_column: str = "dec"
  label_column: str | None = None
  kind: str = "auto"
  bands: tuple[str, ...] = ("g", "r", "z")
  stamp: int | None = None
  min_size: int = 16
  shard_size: int = 512
  compression: str = "lzf"
  seed: int = 0
  fractions: tuple[tuple[str, float], ...] = tuple(splits.DEFAULT_FRACTIONS.items())
  workers: int = 1
  overwrite: bool = False

  def fingerprint(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    del out["workers"], out["overwrite"]
    return json.loads(json.dumps(out))


def _resolve_kind(cat: catalogue_lib.Catalogue, kind: str) -> str:
  kinds = {catalogue_lib.image_kind_of(f) for f in cat.files}
  if kind != "auto":
    return kind
  if len(kinds) != 1:
    raise UserError(f"{cat.path}: the file column mixes FITS and JPEG/PNG files; ingest them "
                    f"separately or pass --kind to quarantine the other kind")
  return kinds.pop()


def _first_stamp(folder: pathlib.Path, cat, options: readers.ReadOptions) -> int:
  """The side of the first readable, square image in CSV order (the set's stamp)."""
  for row, file in enumerate(cat.files):
    path = folder / file
    try:
      image, _, _ = readers.read_image(path, options, row)
    except (UserError, OSError):
      continue
    if image.ndim == 3 and image.shape[0] == image.shape[1]:
      return int(image.shape[0])
    raise UserError(f"{path} [row {row}]: the first readable image is {image.shape[:2]} px, not "
                    f"square: pass --stamp N to crop and resize every image to N x N")
  raise UserError(f"{cat.path}: none of the {len(cat)} files could be read")


def _prepare_out(out: pathlib.Path, fingerprint: dict, overwrite: bool) -> dict | None:
  """The existing manifest to resume, or None after clearing `out` for a fresh ingest."""
  manifest = layout.read_manifest(out)
  if manifest is not None and manifest["fingerprint"] == fingerprint:
    return manifest
  if manifest is not None and not overwrite:
    raise UserError(f"{out} holds an ingest with other options or inputs; pass --overwrite to "
                    f"replace it, or choose another --out")
  if manifest is None and out.exists() and any(p.name != locks.LOCK_NAME for p in out.iterdir()):
    if not overwrite:
      raise UserError(f"{out} is not empty and is not an ingest; choose an empty --out")
  if manifest is not None or overwrite:
    for p in out.iterdir():
      if p.name == locks.LOCK_NAME:
        continue
      shutil.rmtree(p) if p.is_dir() else p.unlink()
  return None


def _write_shard(out: pathlib.Path, k: int, start: int, results: list[dict], cat,
                 dtypes: dict, options: IngestOptions, stamp: int) -> None:
  """Writes shard k (CSV rows from `start`, one result per row) and then its record."""
  accepted = [r for r in results if r["image"] is not None]
  rows = np.array([r["row"] for r in accepted], np.int64)
  name = None
  if accepted:
    stop = start + len(results)
    name = ssl_schema.file_name(start, stop, stamp)
    ra = np.where(np.isfinite(cat.ra[rows]), cat.ra[rows], [r["ra"] for r in accepted])
    dec = np.where(np.isfinite(cat.dec[rows]), cat.dec[rows], [r["dec"] for r in accepted])
    writer.write_shard(out / name, np.stack([r["image"] for r in accepted]), ids=cat.ids[rows],
                       rows=rows, ra=ra, dec=dec,
                       catalogue={c: v[rows] for c, v in cat.columns.items()}, dtypes=dtypes,
                       compression=options.compression)
  rejects = [{"row": r["row"], "id": str(cat.ids[r["row"]]), "file": str(cat.files[r["row"]]),
              "reason": r["reason"], "detail": r["detail"]} for r in results if r["image"] is None]
  layout.write_json(out / layout.STATE / f"shard_{k:06d}.json", {
      "shard": k, "file": name, "rows": rows.tolist(), "rejects": rejects})


def ingest(folder: str | os.PathLike, catalogue_csv: str | os.PathLike, out: str | os.PathLike,
           options: IngestOptions = IngestOptions(), *, progress: bool = False) -> dict[str, Any]:
  """Ingests `folder` as listed by `catalogue_csv` into `out`; returns the report (`report`)."""
  started = time.time()
  folder, out = pathlib.Path(folder).resolve(), pathlib.Path(out)
  if not folder.is_dir():
    raise UserError(f"{folder}: no such image folder")
  if options.compression not in ssl_schema.COMPRESSIONS:
    raise UserError(f"--compression must be one of {ssl_schema.COMPRESSIONS}")
  required = (options.label_column,) if options.label_column else ()
  cat = catalogue_lib.read_catalogue(catalogue_csv, id_column=options.id_column,
                                     file_column=options.file_column, ra_column=options.ra_column,
                                     dec_column=options.dec_column, required=required)
  if not len(cat):
    raise UserError(f"{cat.path}: no rows")
  kind = _resolve_kind(cat, options.kind)
  fingerprint = {**options.fingerprint(), "kind": kind, "folder": str(folder),
                 "catalogue_sha256": provenance.sha256_file(cat.path)}
  out.mkdir(parents=True, exist_ok=True)
  with locks.hold(out / locks.LOCK_NAME, f"ingest folder {out}"):
    manifest = _prepare_out(out, fingerprint, options.overwrite)
    if manifest is None:
      base = readers.ReadOptions(kind=kind, stamp=0, bands=tuple(options.bands))
      stamp = options.stamp or _first_stamp(folder, cat, base)
      manifest = {"format": layout.FORMAT, "fingerprint": fingerprint, "image_kind": kind,
                  "stamp": stamp, "complete": False,
                  "provenance": provenance.provenance(command="lvm-jax ingest",
                                                      options=dataclasses.asdict(options),
                                                      seed=options.seed)}
      layout.write_json(layout.manifest_path(out), manifest)
    read_options = readers.ReadOptions(kind=kind, stamp=int(manifest["stamp"]),
                                       bands=tuple(options.bands),
                                       resize=options.stamp is not None,
                                       min_size=options.min_size)
    _run_shards(folder, cat, out, options, read_options, progress)
    summary = report.finish(out, folder, cat, options, manifest, started)
  return summary


def _run_shards(folder: pathlib.Path, cat, out: pathlib.Path, options: IngestOptions,
                read_options: readers.ReadOptions, progress: bool) -> None:
  (out / layout.STATE).mkdir(exist_ok=True)
  n_shards = math.ceil(len(cat) / options.shard_size)
  todo = [k for k in range(n_shards)
          if not (out / layout.STATE / f"shard_{k:06d}.json").is_file()]
  dtypes = writer.stored_dtypes(cat.columns)

  def tasks(k: int) -> list[tuple[int, str, readers.ReadOptions]]:
    rows = range(k * options.shard_size, min(len(cat), (k + 1) * options.shard_size))
    return [(r, str(folder / cat.files[r]), read_options) for r in rows]

  pool = None
  if options.workers > 1:
    pool = multiprocessing.get_context("spawn").Pool(options.workers)
  try:
    def submit(k: int):
      if pool is None:
        return [readers.load(t) for t in tasks(k)]
      batch = tasks(k)
      return pool.map_async(readers.load, batch,
                            chunksize=max(1, len(batch) // (4 * options.workers)))

    pending = submit(todo[0]) if todo else None
    for i, k in enumerate(todo):
      current = pending
      pending = submit(todo[i + 1]) if i + 1 < len(todo) else None  # read ahead while writing
      if not isinstance(current, list):
        while not current.ready():  # a timed wait, so that Ctrl-C interrupts it
          current.wait(1.0)
      results = current if isinstance(current, list) else current.get()
      _write_shard(out, k, k * options.shard_size, results, cat, dtypes, options,
                   read_options.stamp)
      if progress:
        print(f"\rshard {k + 1}/{n_shards}", end="", file=sys.stderr, flush=True)
    if progress and todo:
      print(file=sys.stderr)
  finally:
    if pool is not None:
      pool.terminate()
      pool.join()
