"""Galaxy Zoo DECaLS volunteer votes (Walmsley et al. 2022): versioned label recipes and a join.

The catalogue is a CSV with one row per galaxy: `iauname`, `ra`, `dec` (ICRS deg) and, per decision
tree question q and answer a, `{q}_{a}_fraction` (share of volunteers answering q who chose a)
and `{q}_total-votes` (volunteers who answered q). A child question (e.g. `disk-edge-on`) is only
asked after a parent answer (`smooth-or-featured` = featured-or-disk), so its votes are meaningful
only where the parent answer holds; recipes therefore walk the tree.

Recipe semantics (`LabelRecipe.labels`): the conditions are checked in order; for each,
  - fewer than `min_votes` answers to its question  -> undecided (None / -1), stop;
  - sum of its answers' fractions not > `threshold` -> the condition's `on_fail` label, stop
    (0: the galaxy is decidedly not the class; None: the class cannot be judged, e.g. a bar on an
    edge-on disk);
  - otherwise go on; all conditions met -> 1.
Changing any threshold or vote count is a new version (`name@v2`); keys are stable.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
from pyarrow import csv as pa_csv

MIN_VOTES = 10  # answers needed on each question of a recipe's path (v1 choice)
DEFAULT_MATCH_RADIUS_ARCSEC = 1.0
UNDECIDED = -1

Catalogue = Mapping[str, np.ndarray]  # column name -> (N,) array


def read_catalogue(path: str | os.PathLike, columns: Sequence[str] | None = None
                   ) -> dict[str, np.ndarray]:
  """The CSV as {column: (N,) array}: text as str, numbers as int64 or float64 (empty cells NaN)."""
  options = pa_csv.ConvertOptions(include_columns=list(columns) if columns else None)
  table = pa_csv.read_csv(os.fspath(path), convert_options=options)
  out = {}
  for name in table.column_names:
    column = table.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
      out[name] = np.asarray(column.to_pylist(), dtype=str)
    elif pa.types.is_null(column.type):  # an all-empty column
      out[name] = np.full(len(column), np.nan)
    else:  # integers with empty cells come back as float64 with NaN
      out[name] = column.to_numpy(zero_copy_only=False)
  return out


@dataclasses.dataclass(frozen=True)
class Condition:
  """Volunteers answering `question` chose one of `answers` with total fraction > threshold."""

  question: str
  answers: tuple[str, ...]
  threshold: float = 0.5
  min_votes: int = MIN_VOTES
  on_fail: int | None = 0

  def columns(self) -> list[str]:
    fractions = [f"{self.question}_{a}_fraction" for a in self.answers]
    return [f"{self.question}_total-votes", *fractions]

  def describe(self) -> str:
    answers = " + ".join(self.answers)
    fail = "undecided" if self.on_fail is None else str(self.on_fail)
    return (f"{self.question}: {answers} fraction > {self.threshold} with >= {self.min_votes} "
            f"votes (else {fail})")


@dataclasses.dataclass(frozen=True)
class LabelRecipe:
  """A binary label from the decision tree; `key` is "name@vN". Semantics in the module doc."""

  name: str
  version: int
  conditions: tuple[Condition, ...]
  description: str = ""

  @property
  def key(self) -> str:
    return f"{self.name}@v{self.version}"

  def columns(self) -> list[str]:
    return [c for cond in self.conditions for c in cond.columns()]

  def labels(self, catalogue: Catalogue) -> np.ndarray:
    """(N,) int8: 1, 0, or UNDECIDED (-1)."""
    missing = [c for c in self.columns() if c not in catalogue]
    if missing:
      raise KeyError(f"recipe {self.key} needs catalogue columns {missing}")
    n = len(np.asarray(catalogue[self.columns()[0]]))
    pending = np.ones(n, bool)
    out = np.ones(n, np.int8)
    for cond in self.conditions:
      votes = np.asarray(catalogue[f"{cond.question}_total-votes"], np.float64)
      fraction = sum(np.asarray(catalogue[f"{cond.question}_{a}_fraction"], np.float64)
                     for a in cond.answers)
      undecided = pending & ~(votes >= cond.min_votes)  # NaN votes are undecided
      out[undecided] = UNDECIDED
      pending &= ~undecided
      failed = pending & ~(fraction > cond.threshold)
      out[failed] = UNDECIDED if cond.on_fail is None else cond.on_fail
      pending &= ~failed
    return out

  def apply(self, catalogue: Catalogue) -> list[int | None]:
    """Per row: 1, 0 or None (undecided)."""
    return [None if v == UNDECIDED else int(v) for v in self.labels(catalogue)]

  def label(self, row: Mapping[str, float]) -> int | None:
    """The label of one row (a mapping of column name to value)."""
    return self.apply({c: np.asarray([row[c]], np.float64) for c in self.columns()})[0]

  def describe(self) -> str:
    steps = "; then ".join(c.describe() for c in self.conditions)
    return f"{self.key}: {self.description} 1 if {steps}."


_FEATURED = Condition("smooth-or-featured", ("featured-or-disk",))
_FACE_ON = Condition("disk-edge-on", ("no",))

RECIPES: dict[str, LabelRecipe] = {r.key: r for r in (
    LabelRecipe("smooth", 1, (Condition("smooth-or-featured", ("smooth",)),),
                "smooth (elliptical-like) versus featured or artefact."),
    LabelRecipe("edge_on", 1, (_FEATURED, Condition("disk-edge-on", ("yes",))),
                "edge-on disk; smooth galaxies are 0."),
    LabelRecipe("face_on_spiral", 1, (_FEATURED, _FACE_ON, Condition("has-spiral-arms", ("yes",))),
                "face-on spiral; smooth, edge-on and armless disks are 0."),
    LabelRecipe("barred", 1,
                (_FEATURED, dataclasses.replace(_FACE_ON, on_fail=None),
                 Condition("bar", ("strong", "weak"))),
                "strong or weak bar in a face-on disk; smooth galaxies are 0, edge-on disks "
                "undecided (a bar cannot be seen)."),
    LabelRecipe("merger", 1, (Condition("merging", ("merger",)),),
                "ongoing merger (the merging question is asked of every galaxy)."),
)}


def get_recipe(key: str) -> LabelRecipe:
  """The recipe named `key` ("name@vN")."""
  if key not in RECIPES:
    raise KeyError(f"unknown label recipe {key!r}; known: {sorted(RECIPES)}")
  return RECIPES[key]


# --- Joining labels to image records --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CatalogueMatch:
  """Pairs (record_index[i], catalogue_index[i]) with their separations, and who is left over.

  record_index, catalogue_index: (M,) int64; separation_arcsec: (M,) float64 (0 for id matches);
  unmatched_records, unmatched_catalogue: sorted indices of rows with no partner; ambiguous: records
  that found a catalogue row within the radius that a closer record took.
  """

  record_index: np.ndarray
  catalogue_index: np.ndarray
  separation_arcsec: np.ndarray
  unmatched_records: np.ndarray
  unmatched_catalogue: np.ndarray
  ambiguous: np.ndarray
  radius_arcsec: float | None = None

  def report(self) -> dict[str, float | int | None]:
    sep = self.separation_arcsec
    return {"matched": int(len(self.record_index)),
            "unmatched_records": int(len(self.unmatched_records)),
            "unmatched_catalogue": int(len(self.unmatched_catalogue)),
            "ambiguous_records": int(len(self.ambiguous)),
            "radius_arcsec": self.radius_arcsec,
            "median_separation_arcsec": float(np.median(sep)) if len(sep) else None,
            "max_separation_arcsec": float(np.max(sep)) if len(sep) else None}


def _leftovers(n: int, used: np.ndarray) -> np.ndarray:
  mask = np.ones(n, bool)
  mask[used] = False
  return np.flatnonzero(mask)


def match_by_id(record_ids: Sequence[str], catalogue_ids: Sequence[str]) -> CatalogueMatch:
  """Exact id matches (e.g. record `id` against `iauname`); a repeated catalogue id raises."""
  catalogue_ids = [str(c) for c in catalogue_ids]
  where = {}
  for j, c in enumerate(catalogue_ids):
    if c in where:
      raise ValueError(f"catalogue id {c!r} appears more than once (rows {where[c]} and {j})")
    where[c] = j
  pairs = [(i, where[str(r)]) for i, r in enumerate(record_ids) if str(r) in where]
  rec = np.asarray([p[0] for p in pairs], np.int64)
  cat = np.asarray([p[1] for p in pairs], np.int64)
  return CatalogueMatch(rec, cat, np.zeros(len(rec)), _leftovers(len(record_ids), rec),
                        _leftovers(len(catalogue_ids), cat), np.zeros(0, np.int64))


def match_by_position(record_ra, record_dec, catalogue_ra, catalogue_dec, *,
                      radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC) -> CatalogueMatch:
  """One-to-one sky match: each record to its nearest catalogue row within `radius_arcsec`.

  Positions are ICRS degrees. `SkyCoord.match_to_catalog_sky` finds each record's nearest row;
  when several records land on one row, the closest keeps it and the others are `ambiguous`
  (and unmatched).
  """
  from astropy import units as u  # pylint: disable=import-outside-toplevel
  from astropy.coordinates import SkyCoord  # pylint: disable=import-outside-toplevel

  n_rec, n_cat = len(record_ra), len(catalogue_ra)
  if n_rec == 0 or n_cat == 0:
    empty = np.zeros(0, np.int64)
    return CatalogueMatch(empty, empty, np.zeros(0), np.arange(n_rec), np.arange(n_cat), empty,
                          radius_arcsec)
  records = SkyCoord(np.asarray(record_ra, float) * u.deg, np.asarray(record_dec, float) * u.deg)
  catalogue = SkyCoord(np.asarray(catalogue_ra, float) * u.deg,
                       np.asarray(catalogue_dec, float) * u.deg)
  nearest, sep2d, _ = records.match_to_catalog_sky(catalogue)
  sep = sep2d.to_value(u.arcsec)
  within = np.flatnonzero(sep <= radius_arcsec)
  order = within[np.argsort(sep[within], kind="stable")]
  taken: set[int] = set()
  keep, ambiguous = [], []
  for i in order:
    (ambiguous if nearest[i] in taken else keep).append(i)
    taken.add(int(nearest[i]))
  rec = np.sort(np.asarray(keep, np.int64))
  cat = nearest[rec].astype(np.int64)
  return CatalogueMatch(rec, cat, sep[rec], _leftovers(n_rec, rec), _leftovers(n_cat, cat),
                        np.sort(np.asarray(ambiguous, np.int64)), radius_arcsec)
