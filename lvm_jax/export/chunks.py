"""The chunks of an export: which process embeds which chunk, their part and reject files,
the manifest after each round, and the consolidation when every chunk is done.

Chunk k is the source records [k * chunk_size, (k + 1) * chunk_size). Process p of P takes the
unfinished chunks p, p + P, ...; all processes step through the same number of rounds (padding
with empty chunks). Part files are written atomically (`manifest.atomic_write`).
"""

from __future__ import annotations

import collections
import math
import pathlib
from typing import Any, Sequence

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_jax.export import manifest as manifest_lib
from lvm_jax.export import schema
from lvm_jax.export.settings import ExportSettings

REJECTS_PARTS = ".rejects"


def chunk_indices(k: int, chunk_size: int, n: int) -> range:
  return range(k * chunk_size, min(n, (k + 1) * chunk_size))


def rounds(remaining: Sequence[int]) -> list[int | None]:
  """This process's chunk in each round (None: an empty chunk to stay in lockstep)."""
  p, count = jax.process_index(), jax.process_count()
  rounds = math.ceil(len(remaining) / count)
  return [remaining[r * count + p] if r * count + p < len(remaining) else None
          for r in range(rounds)]


def sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


class ChunkWriter:
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


def record_round(manifest: manifest_lib.Manifest, writer: ChunkWriter,
                  round_chunks: Sequence[int]) -> None:
  """After a round: process 0 lists the round's chunks (all processes') once their files exist."""
  sync(f"lvm_jax.export.round.{round_chunks[0] if round_chunks else 'empty'}")
  if jax.process_index() != 0:
    return
  for chunk in round_chunks:
    if not writer.part_path(chunk).exists():
      raise RuntimeError(f"chunk {chunk}: {writer.part_path(chunk)} is missing after its round")
    rows = pq.read_metadata(writer.part_path(chunk)).num_rows
    rejects = pq.read_metadata(writer.reject_path(chunk)).num_rows
    manifest.mark_done(chunk, rows, rejects)
  manifest.save()


def finish(out: pathlib.Path, manifest: manifest_lib.Manifest, writer: ChunkWriter,
            settings: ExportSettings, num_chunks: int, timing: dict[str, float], n: int,
            images_this_run: int) -> dict[str, Any]:
  """Consolidates the rejects, writes the optional copies and the summary (process 0).

  timing: `seconds_this_run` (from the start, restore and compilation included) and
  `seconds_embedding` (the read-preprocess-encode-write loop only).
  """
  sync("lvm_jax.export.done")
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
