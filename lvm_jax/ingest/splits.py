"""Seeded, stratified split of an ingested set into disjoint lists (train/val/test, and
optionally a `pretrain` list that the evaluation splits never contain).

Per label value (in sorted order), the rows of that value are shuffled by one NumPy generator
seeded with `seed`, and cut into consecutive runs whose sizes are the fractions of the class
count rounded by largest remainder; rows left over when the fractions sum below 1 are in no
split. The same rows, labels, fractions and seed always give the same lists.
"""

from __future__ import annotations

import collections
import csv
import pathlib
from typing import Mapping

import numpy as np

from lvm_jax.errors import UserError
from lvm_jax.ingest import layout

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
PRETRAIN = "pretrain"


def parse_fractions(text: str, pretrain: float = 0.0) -> dict[str, float]:
  """'train=0.8,val=0.1,test=0.1' (+ a pretrain share, placed first) -> {name: fraction}."""
  out: dict[str, float] = {PRETRAIN: float(pretrain)} if pretrain else {}
  for item in (t.strip() for t in text.split(",") if t.strip()):
    name, _, value = item.partition("=")
    name = name.strip()
    try:
      out_value = float(value)
    except ValueError:
      raise UserError(f"--splits: {item!r} is not NAME=FRACTION") from None
    if not name.isidentifier() or name in out:
      raise UserError(f"--splits: bad or repeated split name {name!r}")
    out[name] = out_value
  check_fractions(out)
  return out


def check_fractions(fractions: Mapping[str, float]) -> None:
  bad = {k: v for k, v in fractions.items() if not 0 < v <= 1}
  if bad or sum(fractions.values()) > 1 + 1e-9:
    hint = (f"; with --pretrain {fractions[PRETRAIN]}, give --splits summing to at most "
            f"{1 - fractions[PRETRAIN]:g}" if PRETRAIN in fractions else "")
    raise UserError(f"split fractions must each be in (0, 1] and sum to at most 1: "
                    f"{dict(fractions)}{hint}")


def _largest_remainder(n: int, fractions: list[float]) -> list[int]:
  exact = [n * f for f in fractions]
  counts = [int(np.floor(e)) for e in exact]
  target = int(round(n * sum(fractions) + 1e-9))
  by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
  for i in by_remainder[:max(0, target - sum(counts))]:
    counts[i] += 1
  return counts


def assign(labels: np.ndarray, fractions: Mapping[str, float], seed: int) -> np.ndarray:
  """(N,) split name per row ('' for rows in no split), stratified by `labels` ((N,) any)."""
  check_fractions(fractions)
  labels = np.asarray(labels).astype(str)
  names, shares = list(fractions), list(fractions.values())
  out = np.full(len(labels), "", dtype=object)
  rng = np.random.default_rng(seed)
  for value in sorted(set(labels.tolist())):
    members = rng.permutation(np.flatnonzero(labels == value))
    start = 0
    for name, count in zip(names, _largest_remainder(len(members), shares)):
      out[members[start:start + count]] = name
      start += count
  return out


def write_splits(folder: str | pathlib.Path, rows: np.ndarray, ids: np.ndarray,
                 labels: np.ndarray, fractions: Mapping[str, float], seed: int,
                 label_column: str | None, files: np.ndarray | None = None
                 ) -> dict[str, dict[str, int]]:
  """Writes `{split}.csv` (row, id, file, label; by row) and `splits.json`; returns counts per
  split and label. A split's CSV is itself an ingest catalogue (id, file relative to the image
  folder), e.g. to ingest the pretrain split as a survey of its own."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  labels = np.asarray(labels).astype(str)
  which = assign(labels, fractions, seed)
  counts: dict[str, dict[str, int]] = {}
  for name in fractions:
    members = np.flatnonzero(which == name)
    counts[name] = dict(sorted(collections.Counter(labels[members].tolist()).items()))
    tmp = folder / f"{name}.csv.tmp"
    with tmp.open("w", newline="") as f:
      out = csv.writer(f)
      out.writerow(["row", "id", "file", "label"])
      out.writerows((int(rows[i]), ids[i], "" if files is None else files[i], labels[i])
                    for i in members)
    tmp.replace(folder / f"{name}.csv")
  layout.write_json(folder / "splits.json", {
      "seed": int(seed), "fractions": dict(fractions), "stratify": label_column,
      "counts": counts, "unassigned": int((which == "").sum())})
  return counts


def read_split(folder: str | pathlib.Path, name: str) -> list[str]:
  """The ids of one split, in row order."""
  with (pathlib.Path(folder) / layout.SPLITS / f"{name}.csv").open(newline="") as f:
    return [r["id"] for r in csv.DictReader(f)]
