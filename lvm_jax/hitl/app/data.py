"""What one server holds for all browser sessions: settings, catalogue, thumbnails, PCA map."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import numpy as np

from lvm_jax.hitl import features
from lvm_jax.hitl.app import sky
from lvm_jax.hitl.app.images import Thumbnails, open_source
from lvm_jax.hitl.catalogue import EmbeddingCatalogue, load_catalogue

# Catalogue columns shown on a card when present (first values of vector columns).
CARD_COLUMNS = ("z_phot_median", "z_spec", "source_type", "mask_flags", "recon_mse")


@dataclasses.dataclass(frozen=True)
class AppConfig:
  """Settings of `lvm-jax hitl` (see `commands.py` for their meaning).

  `session` holds extra `Session` keyword arguments (alpha, per_round, hidden, strategy,
  fast_dims, steps, audit_fraction, ...); `truth` names a catalogue column of 0/1 truth.
  """
  embeddings: pathlib.Path
  images: pathlib.Path | None = None
  store: pathlib.Path | None = None
  out: pathlib.Path = pathlib.Path("hitl_exports")
  seed: int = 0
  per_page: int = 20
  user: str = "default"
  truth: str | None = None
  duplicate_arcsec: float = 2.0
  export_format: str = "parquet"
  session: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not 10 <= self.per_page <= 100:
      raise ValueError(f"per_page must lie in [10, 100], got {self.per_page}")


def _catalogue(path: pathlib.Path) -> EmbeddingCatalogue:
  """A .parquet/.npz file as `Session` reads it, or an export directory (all part files)."""
  return load_catalogue(path)


def pca_map(embeddings: np.ndarray, seed: int) -> np.ndarray:
  """(N, 2) coordinates on the first two principal axes (the Session's own PCA fit, 2 axes)."""
  x = np.asarray(embeddings, np.float32)
  return features.fit_feature_space(x, dims=2, seed=seed).transform(x)


class AppData:
  """The catalogue, its thumbnails, near-duplicate groups and PCA map, loaded once per server.

  Sessions are built over `session_source()`: the embeddings path itself when it is a file
  (exactly the notebook call `Session(path, ...)`), else the arrays of the export directory.
  """

  def __init__(self, config: AppConfig):
    self.config = config
    self.catalogue = _catalogue(pathlib.Path(config.embeddings))
    cat = self.catalogue
    self.keys = [str(i) for i in cat.ids.tolist()]
    self.row = {k: r for r, k in enumerate(self.keys)}
    source = open_source(config.images) if config.images else None
    self.thumbnails = Thumbnails(source, self.keys)
    self.groups = sky.duplicate_groups(cat.ra, cat.dec, config.duplicate_arcsec)
    self.pca = pca_map(cat.embeddings, config.seed)
    self.truth = None
    if config.truth:
      self.truth = np.asarray(cat.columns[config.truth]).astype(bool)
    self._index = None

  @property
  def n(self) -> int:
    return self.catalogue.n

  def session_kwargs(self) -> dict[str, Any]:
    """Keyword arguments of `Session` besides `user` (and `store`, `seed`)."""
    cat = self.catalogue
    kwargs = dict(self.config.session, seed=self.config.seed,
                  store=None if self.config.store is None else str(self.config.store))
    if self.truth is not None:
      kwargs["truth"] = self.truth
    if pathlib.Path(self.config.embeddings).is_dir():
      kwargs.update(embeddings=cat.embeddings, ids=cat.ids, ra=cat.ra, dec=cat.dec)
    else:
      kwargs["embeddings"] = str(self.config.embeddings)
    return kwargs

  def index(self):
    """The k-NN index (`lvm_jax.export.search.EmbeddingIndex`) of the catalogue, built on first use."""
    if self._index is None:
      from lvm_jax.export import search  # pylint: disable=g-import-not-at-top
      cat = self.catalogue
      n = cat.n
      nan = np.full(n, np.nan)
      self._index = search.EmbeddingIndex(
          search.unit_rows(cat.embeddings), np.asarray(self.keys, dtype=object),
          nan if cat.ra is None else cat.ra, nan if cat.dec is None else cat.dec,
          np.asarray(cat.columns.get("source_file", [""] * n), dtype=object),
          np.asarray(cat.columns.get("source_index", np.zeros(n, np.int64))))
    return self._index

  def card_values(self, row: int) -> dict[str, Any]:
    """Catalogue values shown on a card: ra, dec and `CARD_COLUMNS` present in the file."""
    cat = self.catalogue
    out: dict[str, Any] = {}
    if cat.ra is not None:
      out["ra"], out["dec"] = round(float(cat.ra[row]), 6), round(float(cat.dec[row]), 6)
    for name in CARD_COLUMNS:
      if name in cat.columns:
        v = cat.columns[name][row]
        v = v.decode() if isinstance(v, bytes) else v
        out[name] = round(float(v), 4) if isinstance(v, (float, np.floating)) else str(v)
    if self.truth is not None:
      out["truth"] = int(self.truth[row])
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v
            for k, v in out.items()}
