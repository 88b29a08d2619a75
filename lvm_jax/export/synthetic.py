"""Simulated export tables: the export's layout and schema with random positions and embeddings.

For scale tests of the catalogue tools (HATS writes, crossmatches) without running a model:

    write_synthetic_export("sim_export/", n=200_000, dim=768, seed=0)

writes `sim_export/embeddings/part-*.parquet` (`chunk_rows` rows each) exactly as
`lvm-jax export` lays them out (schema `lvm_jax.export.schema`, version and provenance in the
Parquet metadata, `embedding.kind` = "synthetic"), with ids `sim_<row>`, positions uniform on
the sphere inside `ra_range` x `dec_range` (deg) and standard normal float32 embeddings.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_jax import provenance as provenance_lib
from lvm_jax.export import schema


def sky_positions(rng: np.random.Generator, n: int, ra_range=(0.0, 360.0),
                  dec_range=(-90.0, 90.0)) -> tuple[np.ndarray, np.ndarray]:
  """(ra, dec) in deg, uniform on the sphere within the ranges, (n,) float64 each."""
  ra = rng.uniform(*ra_range, n)
  sin_dec = rng.uniform(*np.sin(np.radians(dec_range)), n)
  return ra, np.degrees(np.arcsin(sin_dec))


def synthetic_part(start: int, ra: np.ndarray, dec: np.ndarray, embeddings: np.ndarray,
                   metadata: dict) -> pa.Table:
  """One part file's table for rows start.. of positions (n,) deg and embeddings (n, D)."""
  n, dim = embeddings.shape
  columns = {
      "id": pa.array([f"sim_{start + i}" for i in range(n)]),
      "source_file": pa.array(["synthetic"] * n),
      "source_index": pa.array(np.arange(start, start + n, dtype=np.int64)),
      "ra": pa.array(ra), "dec": pa.array(dec),
      "box": schema.fixed_list(np.zeros((n, 4), np.int32), pa.int32()),
      "arcsec_per_pixel": pa.array(np.full(n, 0.262, np.float32)),
      "mask_flags": pa.array(np.zeros(n, np.int64)),
      "embedding": schema.fixed_list(embeddings.astype(np.float32), pa.float32()),
  }
  return pa.table(columns, schema=schema.embedding_schema(dim, "float32", metadata=metadata))


def write_synthetic_export(out: str | pathlib.Path, n: int, dim: int = 768, seed: int = 0,
                           chunk_rows: int = 10_000, ra_range=(0.0, 360.0),
                           dec_range=(-90.0, 90.0)) -> pathlib.Path:
  """Writes an n-row simulated export to `out`; returns `out`. Memory: one chunk at a time."""
  out = pathlib.Path(out)
  parts = out / schema.PARTS_DIR
  parts.mkdir(parents=True, exist_ok=True)
  metadata = provenance_lib.provenance(
      schema_version=schema.SCHEMA_VERSION,
      embedding={"kind": "synthetic", "dim": int(dim), "dtype": "float32",
                 "definition": "standard normal, not a model's output"},
      data={"synthetic": True, "n": int(n), "seed": int(seed), "ra_range": list(ra_range),
            "dec_range": list(dec_range)})
  rng = np.random.default_rng(seed)
  for k, start in enumerate(range(0, n, chunk_rows)):
    m = min(chunk_rows, n - start)
    ra, dec = sky_positions(rng, m, ra_range, dec_range)
    emb = rng.standard_normal((m, dim), dtype=np.float32)
    pq.write_table(synthetic_part(start, ra, dec, emb, metadata),
                   parts / f"part-{k:05d}.parquet")
  return out
