"""Similarity search over exported embeddings: exact cosine k-nearest neighbours in JAX.

    index = EmbeddingIndex.from_export("emb/")
    anchor, neighbours = index.search_by_position(150.1, 2.2, k=16)   # deg, ICRS
    neighbours = index.search_by_id("9010_431212_1234", k=16)

`cosine_knn` is exact and memory-bounded: queries go in blocks of `query_block` rows and the
database in blocks of `db_block` rows, scanned with a running top-k, so the score matrix in
memory is (query_block, db_block) whatever the database size. The (N, D) unit-normalised
database itself sits on the default device (N = 10^7, D = 768 float32 is 31 GB: use an
accelerator or blocks of the export). No approximate index: faiss is not installed here, and at
a few million rows the exact search takes seconds on a GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
  """(N, D) float32 rows scaled to unit L2 norm (zero rows stay zero)."""
  x = np.asarray(x, np.float32)
  norm = np.linalg.norm(x, axis=1, keepdims=True)
  return x / np.maximum(norm, 1e-12)


@functools.partial(jax.jit, static_argnames=("k",))
def _block_top_k(queries, db_blocks, valid, k: int):
  """Running top-k of queries (q, D) against db_blocks (nb, bb, D); invalid rows score -inf."""
  q = queries.shape[0]
  nb, bb, _ = db_blocks.shape

  def step(best, xs):
    best_scores, best_index = best
    block, block_valid, first = xs
    scores = jnp.dot(queries, block.T, precision=jax.lax.Precision.HIGHEST)  # (q, bb)
    scores = jnp.where(block_valid[None, :], scores, -jnp.inf)
    index = jnp.broadcast_to(first + jnp.arange(bb, dtype=jnp.int32), (q, bb))
    all_scores = jnp.concatenate([best_scores, scores], axis=1)
    all_index = jnp.concatenate([best_index, index], axis=1)
    top, pos = jax.lax.top_k(all_scores, k)
    return (top, jnp.take_along_axis(all_index, pos, axis=1)), None

  init = (jnp.full((q, k), -jnp.inf, jnp.float32), jnp.full((q, k), -1, jnp.int32))
  firsts = jnp.arange(nb, dtype=jnp.int32) * bb
  (scores, index), _ = jax.lax.scan(step, init, (db_blocks, valid, firsts))
  return scores, index


def cosine_knn(queries: np.ndarray, database: np.ndarray, k: int, *, query_block: int = 1024,
               db_block: int = 8192, normalised: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Exact k nearest rows of `database` (N, D) by cosine similarity for each query (Q, D).

  Returns (similarity (Q, k) float32, descending; index (Q, k) int64 into `database`), with
  k capped at N. Ties go to the lower database index. `normalised`: rows are unit already.
  """
  db = np.asarray(database, np.float32) if normalised else unit_rows(database)
  qs = np.asarray(queries, np.float32) if normalised else unit_rows(queries)
  n, d = db.shape
  k = min(int(k), n)
  if k <= 0 or qs.shape[0] == 0:
    return np.zeros((qs.shape[0], 0), np.float32), np.zeros((qs.shape[0], 0), np.int64)
  db_block = min(db_block, n)
  nb = math.ceil(n / db_block)
  padded = np.zeros((nb * db_block, d), np.float32)
  padded[:n] = db
  valid = (np.arange(nb * db_block) < n).reshape(nb, db_block)
  db_blocks = jnp.asarray(padded.reshape(nb, db_block, d))
  valid = jnp.asarray(valid)
  query_block = min(query_block, qs.shape[0])
  scores, index = [], []
  for start in range(0, qs.shape[0], query_block):
    block = np.zeros((query_block, d), np.float32)
    part = qs[start:start + query_block]
    block[:len(part)] = part
    s, i = _block_top_k(jnp.asarray(block), db_blocks, valid, k)
    scores.append(np.asarray(s)[:len(part)])
    index.append(np.asarray(i)[:len(part)])
  return np.concatenate(scores), np.concatenate(index).astype(np.int64)


@dataclasses.dataclass
class EmbeddingIndex:
  """Exported embeddings (unit-normalised) with their ids and sky positions.

  embeddings (N, D) float32 unit rows; ids (N,) str; ra, dec (N,) deg; source_file,
  source_index (N,) for fetching the images.
  """

  embeddings: np.ndarray
  ids: np.ndarray
  ra: np.ndarray
  dec: np.ndarray
  source_file: np.ndarray
  source_index: np.ndarray

  @classmethod
  def from_export(cls, out: str | pathlib.Path) -> EmbeddingIndex:
    from lvm_jax.export import tables
    t = tables.read_embeddings(out, ["id", "ra", "dec", "source_file", "source_index",
                                     "embedding"])
    emb = t.column("embedding").combine_chunks()
    dim = emb.type.list_size
    values = emb.flatten().to_numpy(zero_copy_only=False).reshape(len(t), dim)
    return cls(unit_rows(values), np.asarray(t.column("id").to_pylist(), dtype=object),
               t.column("ra").to_numpy(), t.column("dec").to_numpy(),
               np.asarray(t.column("source_file").to_pylist(), dtype=object),
               t.column("source_index").to_numpy())

  def __len__(self) -> int:
    return len(self.ids)

  def _rows(self, index: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    return [{"rank": r, "id": str(self.ids[i]), "ra": float(self.ra[i]),
             "dec": float(self.dec[i]), "similarity": float(s),
             "source_file": str(self.source_file[i]), "source_index": int(self.source_index[i])}
            for r, (i, s) in enumerate(zip(index, scores), start=1)]

  def knn(self, queries: np.ndarray, k: int, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """`cosine_knn` of (Q, D) query embeddings against the index."""
    return cosine_knn(unit_rows(queries), self.embeddings, k, normalised=True, **kwargs)

  def position(self, object_id: str) -> int:
    hits = np.flatnonzero(self.ids == object_id)
    if not hits.size:
      raise KeyError(f"id {object_id!r} is not in the export")
    return int(hits[0])

  def search_by_id(self, object_id: str, k: int = 16) -> list[dict[str, Any]]:
    """The k most similar galaxies to `object_id`, itself excluded, most similar first."""
    i = self.position(object_id)
    scores, index = self.knn(self.embeddings[i:i + 1], k + 1)
    keep = index[0] != i
    return self._rows(index[0][keep][:k], scores[0][keep][:k])

  def nearest(self, ra: float, dec: float) -> tuple[int, float]:
    """(row, separation in arcsec) of the catalogue object nearest to (ra, dec) deg ICRS."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    target = SkyCoord([ra] * u.deg, [dec] * u.deg)
    catalogue = SkyCoord(self.ra * u.deg, self.dec * u.deg)
    i, sep, _ = target.match_to_catalog_sky(catalogue)
    return int(i[0]), float(sep.to(u.arcsec).value[0])

  def search_by_position(self, ra: float, dec: float, k: int = 16
                         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(anchor, neighbours): the nearest object to (ra, dec) with `separation_arcsec`, and its
    k most similar galaxies."""
    i, sep = self.nearest(ra, dec)
    anchor = {"id": str(self.ids[i]), "ra": float(self.ra[i]), "dec": float(self.dec[i]),
              "separation_arcsec": sep, "source_file": str(self.source_file[i]),
              "source_index": int(self.source_index[i])}
    return anchor, self.search_by_id(anchor["id"], k)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
  """A plain-text table of search results (rank, id, ra, dec, similarity)."""
  lines = [f"{'rank':>4}  {'id':<28} {'ra':>11} {'dec':>11} {'similarity':>10}"]
  for r in rows:
    lines.append(f"{r['rank']:>4}  {r['id']:<28} {r['ra']:>11.6f} {r['dec']:>11.6f} "
                 f"{r['similarity']:>10.5f}")
  return "\n".join(lines)
