"""Similarity search over exported embeddings: exact cosine k-NN in JAX, approximate with faiss.

    index = EmbeddingIndex.from_export("emb/")
    anchor, neighbours = index.search_by_position(150.1, 2.2, k=16)   # deg, ICRS
    neighbours = index.search_by_id("9010_431212_1234", k=16)
    index.build_approximate(nprobe=16)                                 # optional, needs faiss
    neighbours = index.search_by_id("9010_431212_1234", k=16, approximate=True)

`cosine_knn` is exact and memory-bounded: queries go in blocks of `query_block` rows and the
database in blocks of `db_block` rows, scanned with a running top-k, so the score matrix in
memory is (query_block, db_block) whatever the database size. The (N, D) unit-normalised
database itself sits on the default device (N = 10^7, D = 768 float32 is 31 GB: use an
accelerator or blocks of the export).

`IVFIndex` is the optional approximate backend for surveys too large to scan per query: a faiss
`IndexIVFFlat` with inner product over the unit rows (so scores are cosine similarities),
`nlist` ~ 4 sqrt(N) inverted lists from k-means on a seeded random sample of rows, and `nprobe`
lists scanned per query (`nprobe = nlist` scans everything and equals `cosine_knn` up to ties
and float32 rounding). faiss is imported only when an `IVFIndex` is built: `pip install
faiss-cpu` or `pip install 'lvm-jax[ann]'`. The index holds its own float32 copy of the rows
(N x D x 4 bytes) in host memory.
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


def _import_faiss():
  """The faiss module, or an ImportError that says how to install it."""
  try:
    import faiss  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("the approximate index needs faiss: pip install faiss-cpu "
                      "(or pip install 'lvm-jax[ann]'); exact search (cosine_knn) needs "
                      "nothing more") from e
  return faiss


def default_nlist(n: int) -> int:
  """Inverted lists for N rows: round(4 sqrt(N)), at least 1 and at most N."""
  return max(1, min(n, round(4 * math.sqrt(n))))


def _order_ties(scores: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Rows sorted by similarity descending, ties to the lower index, -1 padding last."""
  key_index = np.where(index < 0, np.iinfo(np.int64).max, index)
  order = np.lexsort((key_index, -scores), axis=1)
  return np.take_along_axis(scores, order, axis=1), np.take_along_axis(index, order, axis=1)


class NonFiniteRowError(ValueError):
  """A database row holds NaN or inf; `row` is its index."""

  def __init__(self, row: int):
    super().__init__(f"row {row} of the database is not finite")
    self.row = row


@dataclasses.dataclass
class IVFIndex:
  """Approximate cosine k-NN: a faiss `IndexIVFFlat` (inner product) over (N, D) unit rows.

  `knn` follows `cosine_knn`'s convention (similarity (Q, k) float32 descending, index (Q, k)
  int64, k capped at N, equal similarities ordered by lower index among the rows returned),
  except that a query whose `nprobe` lists hold fewer than k rows gets its missing places
  padded with index -1 and similarity -inf (always after the rows found).

  Cost: training is ~10 x train_size x nlist x D multiply-adds, adding N x nlist x D, a query
  (nlist + N nprobe / nlist) x D.
  """

  index: Any  # faiss.IndexIVFFlat
  nlist: int
  nprobe: int
  seed: int

  @classmethod
  def build(cls, database: np.ndarray, *, nlist: int | None = None, nprobe: int = 16,
            train_size: int | None = None, seed: int = 0, normalised: bool = False) -> IVFIndex:
    """Trains the coarse quantiser (k-means, faiss's default 10 iterations, seeded) on
    `train_size` rows drawn with `seed` (default min(N, 40 nlist)) and adds all N rows.

    `nlist` default `default_nlist(N)`; `normalised`: rows are unit already.
    """
    faiss = _import_faiss()
    db = np.ascontiguousarray(database, np.float32) if normalised else unit_rows(database)
    n, d = db.shape
    if n == 0:
      raise ValueError("cannot build an approximate index over an empty database")
    nlist = default_nlist(n) if nlist is None else int(nlist)
    if not 1 <= nlist <= n:
      raise ValueError(f"nlist must be in [1, {n}] for {n} rows, got {nlist}")
    if nprobe < 1:
      raise ValueError(f"nprobe must be at least 1, got {nprobe}")
    bad = np.flatnonzero(~np.isfinite(db).all(axis=1))
    if bad.size:
      raise NonFiniteRowError(int(bad[0]))
    train_size = min(n, 40 * nlist if train_size is None else int(train_size))
    if train_size < nlist:
      raise ValueError(f"train_size {train_size} is below nlist {nlist}")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, train_size, replace=False))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = int(seed)
    index.train(np.ascontiguousarray(db[sample]))
    index.add(db)
    return cls(index, nlist, int(nprobe), int(seed))

  def __len__(self) -> int:
    return int(self.index.ntotal)

  def knn(self, queries: np.ndarray, k: int, *, nprobe: int | None = None,
          normalised: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest rows for each query (Q, D); `nprobe` (capped at nlist) overrides
    the index's default for this call."""
    faiss = _import_faiss()
    qs = np.ascontiguousarray(queries, np.float32) if normalised else unit_rows(queries)
    if qs.ndim != 2 or qs.shape[1] != self.index.d:
      raise ValueError(f"queries must be (Q, {self.index.d}), got {qs.shape}")
    k = min(int(k), len(self))
    if k <= 0 or qs.shape[0] == 0:
      return np.zeros((qs.shape[0], 0), np.float32), np.zeros((qs.shape[0], 0), np.int64)
    probes = min(self.nlist, self.nprobe if nprobe is None else int(nprobe))
    if probes < 1:
      raise ValueError(f"nprobe must be at least 1, got {probes}")
    scores, index = self.index.search(qs, k, params=faiss.SearchParametersIVF(nprobe=probes))
    index = index.astype(np.int64)
    scores = np.where(index < 0, -np.inf, scores).astype(np.float32)
    return _order_ties(scores, index)

  def describe(self) -> str:
    """The backend and its settings, in words (printed by `lvm-jax search --approximate`)."""
    return (f"approximate IVF (faiss IndexIVFFlat, inner product, nlist={self.nlist}, "
            f"nprobe={min(self.nprobe, self.nlist)}, {len(self)} rows)")


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
  approximate: IVFIndex | None = dataclasses.field(default=None, repr=False, compare=False)

  @classmethod
  def from_export(cls, out: str | pathlib.Path) -> EmbeddingIndex:
    from lvm_jax.export import tables
    c = tables.read_catalogue(out, ["id", "ra", "dec", "source_file", "source_index",
                                    "embedding"])
    return cls(unit_rows(c["embedding"]), np.asarray(c["id"], dtype=object), c["ra"], c["dec"],
               np.asarray(c["source_file"], dtype=object), c["source_index"])

  def __len__(self) -> int:
    return len(self.ids)

  def _rows(self, index: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    return [{"rank": r, "id": str(self.ids[i]), "ra": float(self.ra[i]),
             "dec": float(self.dec[i]), "similarity": float(s),
             "source_file": str(self.source_file[i]), "source_index": int(self.source_index[i])}
            for r, (i, s) in enumerate(zip(index, scores), start=1)]

  def build_approximate(self, nlist: int | None = None, nprobe: int = 16,
                        seed: int = 0) -> IVFIndex:
    """Builds (and keeps) the faiss IVF index over the embeddings; see `IVFIndex.build`."""
    try:
      self.approximate = IVFIndex.build(self.embeddings, nlist=nlist, nprobe=nprobe, seed=seed,
                                        normalised=True)
    except NonFiniteRowError as e:
      raise ValueError(f"the embedding of {self.ids[e.row]} ({self.source_file[e.row]}, index "
                       f"{self.source_index[e.row]}) is not finite") from e
    return self.approximate

  def backend(self, approximate: bool = False) -> str:
    """Which search answers `knn(..., approximate=approximate)`, in words."""
    if approximate:
      return self._approximate().describe()
    return f"exact cosine k-NN (JAX, {jax.default_backend()}, {len(self)} rows)"

  def _approximate(self) -> IVFIndex:
    if self.approximate is None:
      raise ValueError("no approximate index: call build_approximate() first")
    return self.approximate

  def knn(self, queries: np.ndarray, k: int, approximate: bool = False,
          **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """`cosine_knn` (or `IVFIndex.knn` when `approximate`; -1 / -inf padding possible) of
    (Q, D) query embeddings against the index."""
    if approximate:
      return self._approximate().knn(unit_rows(queries), k, normalised=True, **kwargs)
    return cosine_knn(unit_rows(queries), self.embeddings, k, normalised=True, **kwargs)

  def position(self, object_id: str) -> int:
    hits = np.flatnonzero(self.ids == object_id)
    if not hits.size:
      raise KeyError(f"id {object_id!r} is not in the export")
    return int(hits[0])

  def search_by_id(self, object_id: str, k: int = 16,
                   approximate: bool = False) -> list[dict[str, Any]]:
    """The k most similar galaxies to `object_id`, itself excluded, most similar first.

    `approximate`: from the IVF index, which may return fewer than k when its probed lists hold
    fewer rows.
    """
    i = self.position(object_id)
    scores, index = self.knn(self.embeddings[i:i + 1], k + 1, approximate=approximate)
    keep = (index[0] != i) & (index[0] >= 0)
    return self._rows(index[0][keep][:k], scores[0][keep][:k])

  def nearest(self, ra: float, dec: float) -> tuple[int, float]:
    """(row, separation in arcsec) of the catalogue object nearest to (ra, dec) deg ICRS."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    target = SkyCoord([ra] * u.deg, [dec] * u.deg)
    catalogue = SkyCoord(self.ra * u.deg, self.dec * u.deg)
    i, sep, _ = target.match_to_catalog_sky(catalogue)
    return int(i[0]), float(sep.to(u.arcsec).value[0])

  def search_by_position(self, ra: float, dec: float, k: int = 16, approximate: bool = False
                         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(anchor, neighbours): the nearest object to (ra, dec) with `separation_arcsec`, and its
    k most similar galaxies (`approximate`: see `search_by_id`)."""
    i, sep = self.nearest(ra, dec)
    anchor = {"id": str(self.ids[i]), "ra": float(self.ra[i]), "dec": float(self.dec[i]),
              "separation_arcsec": sep, "source_file": str(self.source_file[i]),
              "source_index": int(self.source_index[i])}
    return anchor, self.search_by_id(anchor["id"], k, approximate)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
  """A plain-text table of search results (rank, id, ra, dec, similarity)."""
  lines = [f"{'rank':>4}  {'id':<28} {'ra':>11} {'dec':>11} {'similarity':>10}"]
  for r in rows:
    lines.append(f"{r['rank']:>4}  {r['id']:<28} {r['ra']:>11.6f} {r['dec']:>11.6f} "
                 f"{r['similarity']:>10.5f}")
  return "\n".join(lines)
