"""The objects a HITL session ranks: embeddings, their ids and (when known) sky positions.

An embedding catalogue comes from a bare array, a `.npy`/`.npz` file or a Parquet file
with an `id` column and an `embedding` fixed-size-list column (plus optional `ra`, `dec`
and any truth column).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class EmbeddingCatalogue:
  """Embeddings and what identifies each row.

  Attributes:
    embeddings: (N, D) float32.
    ids: (N,) object ids (int64 or str); row numbers for a bare array.
    ra, dec: (N,) degrees, or None when unknown.
    source: where the embeddings came from (a path, or "array (N, D)").
    columns: other per-object columns found in the file (e.g. a truth column), (N,) each.
  """
  embeddings: np.ndarray
  ids: np.ndarray
  ra: np.ndarray | None
  dec: np.ndarray | None
  source: str
  columns: dict[str, np.ndarray]

  @property
  def n(self) -> int:
    return self.embeddings.shape[0]


def _from_parquet(path: str) -> dict[str, Any]:
  """A Parquet file, or an `lvm-jax export` folder (OUT or OUT/embeddings); (N,) columns only
  besides the (N, D) embeddings."""
  from lvm_jax.export import tables  # pylint: disable=g-import-not-at-top
  columns = tables.read_catalogue(path)
  out = {"embeddings": columns.pop("embedding")}
  out.update({name: v for name, v in columns.items() if v.ndim == 1})
  return out


def _from_numpy(path: str) -> dict[str, Any]:
  if path.endswith(".npy"):
    return {"embeddings": np.load(path)}
  with np.load(path, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


def load_catalogue(source, ids=None, ra=None, dec=None) -> EmbeddingCatalogue:
  """Builds a catalogue from an (N, D) array, a .parquet/.npy/.npz path or an export folder.

  Explicit `ids`, `ra`, `dec` override what the file holds. Ids default to row numbers only
  for bare arrays; a file must carry an `id`/`ids` column.
  """
  if isinstance(source, (str, os.PathLike)):
    path = os.fspath(source)
    is_table = path.endswith(".parquet") or os.path.isdir(path)
    cols = _from_parquet(path) if is_table else _from_numpy(path)
    name = path
    emb = cols.pop("embeddings")
    file_ids = cols.pop("id", cols.pop("ids", None))
    if ids is None:
      if file_ids is None:
        raise ValueError(f"{path} has no 'id' column: ids are required for files")
      ids = file_ids
  else:
    emb = np.asarray(source)
    cols = {}
    name = f"array {emb.shape}"
    if ids is None:
      ids = np.arange(emb.shape[0], dtype=np.int64)
  emb = np.ascontiguousarray(emb, dtype=np.float32)
  if emb.ndim != 2:
    raise ValueError(f"embeddings must be (N, D), got {emb.shape}")
  ids = np.asarray(ids)
  if ids.dtype.kind == "O":
    ids = ids.astype(str)
  if ids.shape != (emb.shape[0],):
    raise ValueError(f"ids {ids.shape} do not match embeddings {emb.shape}")
  if len(np.unique(ids)) != len(ids):
    raise ValueError("ids must be unique")
  ra = cols.pop("ra", None) if ra is None else np.asarray(ra)
  dec = cols.pop("dec", None) if dec is None else np.asarray(dec)
  cols.pop("ra", None)
  cols.pop("dec", None)
  as_float = lambda a: None if a is None else np.asarray(a, dtype=np.float64)
  return EmbeddingCatalogue(emb, ids, as_float(ra), as_float(dec), name, cols)
