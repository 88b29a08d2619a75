"""Galaxy Zoo DECaLS label recipes and the catalogue join."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from lvm_jax.data import galaxy_zoo
from lvm_jax.data.galaxy_zoo import (RECIPES, get_recipe, match_by_id, match_by_position,
                                     read_catalogue)

COLUMNS = ["iauname", "ra", "dec", "smooth-or-featured_smooth_fraction",
           "smooth-or-featured_featured-or-disk_fraction", "smooth-or-featured_total-votes",
           "disk-edge-on_yes_fraction", "disk-edge-on_no_fraction", "disk-edge-on_total-votes",
           "has-spiral-arms_yes_fraction", "has-spiral-arms_total-votes", "bar_strong_fraction",
           "bar_weak_fraction", "bar_no_fraction", "bar_total-votes", "merging_merger_fraction",
           "merging_total-votes"]

# name, ra, dec, smooth, featured, sf votes, edge yes, edge no, edge votes, spiral yes,
# spiral votes, bar strong, bar weak, bar no, bar votes, merger, merging votes
ROWS = {
    "elliptical": ["J0", 10.0, 0.0, 0.9, 0.1, 40, "", "", 0, "", 0, "", "", "", 0, 0.1, 40],
    "face_on_barred_spiral": ["J1", 10.01, 0.0, 0.1, 0.9, 40, 0.1, 0.9, 36, 0.8, 30, 0.4, 0.3,
                              0.3, 30, 0.0, 40],
    "edge_on": ["J2", 10.02, 0.0, 0.2, 0.8, 40, 0.9, 0.1, 32, 0.1, 3, 0.0, 0.0, 1.0, 3, 0.05, 40],
    "few_votes": ["J3", 10.03, 0.0, 0.2, 0.8, 5, 0.1, 0.9, 4, 0.9, 4, 0.9, 0.0, 0.1, 4, 0.6, 5],
    "armless_disk_merger": ["J4", 10.04, 0.0, 0.3, 0.7, 40, 0.2, 0.8, 28, 0.2, 25, 0.0, 0.1, 0.9,
                            25, 0.7, 40],
    "featured_few_edge_votes": ["J5", 10.05, 0.0, 0.3, 0.7, 40, 0.1, 0.9, 2, 0.9, 2, 0.9, 0.0,
                                0.1, 2, 0.1, 40],
}
EXPECTED = {  # recipe -> label per ROWS entry, in order
    "smooth@v1": [1, 0, 0, None, 0, 0],
    "edge_on@v1": [0, 0, 1, None, 0, None],
    "face_on_spiral@v1": [0, 1, 0, None, 0, None],
    "barred@v1": [0, 1, None, None, 0, None],
    "merger@v1": [0, 0, 0, None, 1, 0],
}


@pytest.fixture
def catalogue(tmp_path):
  path = tmp_path / "gz_decals_volunteers.csv"
  with path.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(COLUMNS)
    writer.writerows(ROWS.values())
  return read_catalogue(path)


def test_read_catalogue(catalogue):
  assert catalogue["iauname"].tolist() == ["J0", "J1", "J2", "J3", "J4", "J5"]
  assert np.isnan(catalogue["disk-edge-on_yes_fraction"][0])
  assert catalogue["ra"].dtype == np.float64


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_recipes(catalogue, key):
  recipe = get_recipe(key)
  assert recipe.apply(catalogue) == EXPECTED[key]
  row = {c: catalogue[c][1] for c in recipe.columns()}
  assert recipe.label(row) == EXPECTED[key][1]
  assert key in recipe.describe()


def test_recipe_registry():
  assert set(EXPECTED) <= set(RECIPES)
  with pytest.raises(KeyError, match="known"):
    get_recipe("spiral@v9")
  with pytest.raises(KeyError, match="bar_total-votes"):
    get_recipe("barred@v1").labels({"smooth-or-featured_total-votes": np.ones(1)})


def test_match_by_position(catalogue):
  arcsec = 1 / 3600
  # records: near J1 (0.3"), near J4 (0.5"), 5" from J0 (outside 1"), and a second one near J1.
  ra = np.array([10.01 + 0.3 * arcsec, 10.04, 10.0 + 5 * arcsec, 10.01 + 0.6 * arcsec])
  dec = np.array([0.0, 0.5 * arcsec, 0.0, 0.0])
  match = match_by_position(ra, dec, catalogue["ra"], catalogue["dec"], radius_arcsec=1.0)
  assert match.record_index.tolist() == [0, 1]
  assert match.catalogue_index.tolist() == [1, 4]
  np.testing.assert_allclose(match.separation_arcsec, [0.3, 0.5], atol=1e-3)
  assert match.unmatched_records.tolist() == [2, 3]
  assert match.ambiguous.tolist() == [3]
  assert match.unmatched_catalogue.tolist() == [0, 2, 3, 5]
  report = match.report()
  assert report["matched"] == 2 and report["unmatched_catalogue"] == 4
  assert report["radius_arcsec"] == galaxy_zoo.DEFAULT_MATCH_RADIUS_ARCSEC


def test_match_by_id(catalogue):
  match = match_by_id(["J4", "X", "J0"], catalogue["iauname"])
  assert match.record_index.tolist() == [0, 2] and match.catalogue_index.tolist() == [4, 0]
  assert match.unmatched_records.tolist() == [1]
  assert len(match.unmatched_catalogue) == 4
  with pytest.raises(ValueError, match="more than once"):
    match_by_id(["J0"], ["J0", "J0"])
