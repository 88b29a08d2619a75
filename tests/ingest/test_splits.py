"""Seeded, stratified splits: same seed same files, other seed other files, disjoint lists."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from lvm_jax.errors import UserError
from lvm_jax.ingest import splits

FRACTIONS = {"pretrain": 0.4, "train": 0.4, "val": 0.1, "test": 0.1}


def _labels(n=1000, seed=0):
  return np.random.default_rng(seed).choice(["ell", "spiral", "merger"], n, p=[0.7, 0.25, 0.05])


def test_same_seed_same_files_other_seed_other_files(tmp_path):
  labels = _labels()
  rows, ids = np.arange(len(labels)), np.array([f"o{i}" for i in range(len(labels))])
  for name, seed in (("a", 3), ("b", 3), ("c", 4)):
    splits.write_splits(tmp_path / name, rows, ids, labels, FRACTIONS, seed, "class")
  for split in FRACTIONS:
    a, b, c = ((tmp_path / d / f"{split}.csv").read_bytes() for d in "abc")
    assert a == b
    assert a != c


def test_splits_are_disjoint_complete_and_stratified():
  labels = _labels()
  which = splits.assign(labels, FRACTIONS, seed=0)
  assert set(which) == set(FRACTIONS)  # the fractions sum to 1: every row in one split
  for value in ("ell", "spiral", "merger"):
    members = labels == value
    counts = collections.Counter(which[members])
    for name, share in FRACTIONS.items():
      assert abs(counts[name] - share * members.sum()) <= 1, (value, name, counts)


def test_leftover_rows_are_in_no_split_and_labels_need_not_be_text():
  labels = np.repeat([0, 1], [30, 10])
  which = splits.assign(labels, {"train": 0.5, "test": 0.25}, seed=1)
  # 30 rows: 15 train + 7.5 test -> 8 (a half rounds up), 7 left; 10 rows: 5 + 3, 2 left.
  assert collections.Counter(which[labels == 0]) == {"train": 15, "test": 8, "": 7}
  assert collections.Counter(which[labels == 1]) == {"train": 5, "test": 3, "": 2}


def test_parse_fractions():
  assert splits.parse_fractions("train=0.6,test=0.2", pretrain=0.2) == {
      "pretrain": 0.2, "train": 0.6, "test": 0.2}
  for bad in ("train=0.9,test=0.2", "train=x", "train=0.5,train=0.1", "train=0"):
    with pytest.raises(UserError):
      splits.parse_fractions(bad)
