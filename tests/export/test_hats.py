"""HATS catalogues of an export (hats-import on Dask) and crossmatches with LSDB.

One in-process Dask cluster (`dask_cluster`, conftest) serves every test; catalogues hold a few hundred rows.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_jax import cli
from lvm_jax.export import crossmatch, hats_catalogue, read_embeddings, read_metadata, synthetic

N, DIM, UNPLACED = 600, 8, (4, 333, 598)
RA0, DEC0, SIDE = 150.0, 2.0, 1.0  # deg: the patch the rows lie in
MAX_ROWS, MARGIN, RADIUS = 160, 20.0, 10.0  # rows, arcsec, arcsec


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
  """A simulated export of N rows in two part files; rows UNPLACED have NaN positions."""
  out = tmp_path_factory.mktemp("sim_export")
  (out / "embeddings").mkdir()
  rng = np.random.default_rng(3)
  ra, dec = synthetic.sky_positions(rng, N, (RA0, RA0 + SIDE), (DEC0, DEC0 + SIDE))
  ra[list(UNPLACED)] = np.nan
  emb = rng.standard_normal((N, DIM)).astype(np.float32)
  md = {"schema_version": 1, "embedding": {"kind": "mean", "dim": DIM, "dtype": "float32"},
        "checkpoint": {"path": "ckpt", "step": 3}}
  for k, rows in enumerate((slice(0, 350), slice(350, N))):
    pq.write_table(synthetic.synthetic_part(rows.start, ra[rows], dec[rows], emb[rows], md),
                   out / "embeddings" / f"part-{k:05d}.parquet")
  return out


@pytest.fixture(scope="session")
def hats_dir(export_dir, dask_cluster, tmp_path_factory):
  out = tmp_path_factory.mktemp("hats") / "sim_hats"
  summary = hats_catalogue.write_hats(export_dir, out, client=dask_cluster[1],
                                      margin_arcsec=MARGIN, highest_order=7, max_rows=MAX_ROWS,
                                      skip_unplaced=True)
  return out, summary


def _pixel_of(ra, dec, pixels):
  """Index into `pixels` (HealpixPixel list) of the partition holding each position."""
  from hats.pixel_math.spatial_index import compute_spatial_index
  index29 = compute_spatial_index(np.asarray(ra), np.asarray(dec))
  out = np.full(len(index29), -1)
  for j, p in enumerate(pixels):
    out[(index29 >> (2 * (29 - p.order))) == p.pixel] = j
  return out


def test_export_rows_without_a_position_are_refused_with_file_row_and_id(export_dir,
                                                                        dask_cluster, tmp_path):
  with pytest.raises(hats_catalogue.UnplacedRowsError, match=r"3 of 600 rows.*part-00000"
                     r"\.parquet row 4 \(id 'sim_4'\)"):
    hats_catalogue.write_hats(export_dir, tmp_path / "h", client=dask_cluster[1])
  assert cli.main(["export-hats", str(export_dir), str(tmp_path / "h2"),
                   "--dask-address", dask_cluster[0].scheduler_address]) == 2


def test_hats_catalogue_opens_with_hats_and_lsdb_with_documented_partitions_and_margin(
    hats_dir, export_dir):
  import hats
  import lsdb
  out, summary = hats_dir
  collection = hats.read_hats(out)
  main = collection.main_catalog
  assert main.catalog_info.total_rows == N - len(UNPLACED) == summary["rows"]
  assert collection.default_margin == f"{hats_catalogue.CATALOGUE}_20arcs"
  pixels = main.get_healpix_pixels()
  assert len(pixels) == summary["partitions"] > 3
  assert max(p.order for p in pixels) <= 7
  assert main.catalog_info.extra_dict()["lvmjax_embedding_dim"] == str(DIM)

  cat = lsdb.read_hats(out)
  assert cat.margin is not None
  assert cat.margin.hc_structure.catalog_info.margin_threshold == MARGIN
  df = cat.compute()
  counts = df.groupby(_pixel_of(df["ra"], df["dec"], pixels)).size()
  assert counts.max() <= MAX_ROWS and counts.index.min() >= 0
  assert pa.types.is_fixed_size_list(pa.array(df["embedding"]).type)

  # The margin cache: rows of neighbouring partitions, within MARGIN of the border.
  margin = cat.margin.compute()
  assert 0 < len(margin) == summary["margin_rows"]
  assert set(margin["id"]) <= set(df["id"])

  # Every placed row once, with its embedding; the others listed with file and row.
  exported = read_embeddings(export_dir).to_pandas().set_index("id")
  placed = exported[np.isfinite(exported["ra"])]
  assert sorted(df["id"]) == sorted(placed.index)
  got = np.stack(df.set_index("id").loc[placed.index, "embedding"].to_numpy())
  np.testing.assert_array_equal(got, np.stack(placed["embedding"].to_numpy()))
  unplaced = pq.read_table(out / hats_catalogue.UNPLACED_FILE).to_pydict()
  assert unplaced["id"] == [f"sim_{i}" for i in UNPLACED]
  assert unplaced["export_row"] == [4, 333, 598 - 350]

  prov = json.loads((out / hats_catalogue.PROVENANCE_FILE).read_text())
  assert prov["export_metadata"] == read_metadata(export_dir) == read_metadata(out)
  assert prov["hats"]["unplaced_rows"] == 3 and "lvm_jax_version" in prov
  assert read_embeddings(out, ["id"]).num_rows == N - len(UNPLACED)


def _known_pairs(export_dir, pixels, rng, tries: int = 40):
  """A catalogue of true counterparts (2-8 arcsec off an exported galaxy, every other one
  across a partition border where one lies that close) and decoys (12-18 arcsec off, more
  than 12 arcsec from every galaxy), for a match radius RADIUS."""
  from astropy import units as u
  from astropy.coordinates import SkyCoord
  t = read_embeddings(export_dir, ["id", "ra", "dec"]).to_pandas()
  t = t[np.isfinite(t["ra"])].reset_index(drop=True)
  n = len(t)
  galaxies = SkyCoord(t["ra"].to_numpy() * u.deg, t["dec"].to_numpy() * u.deg)
  counterpart = np.arange(n) % 3 > 0
  sep = np.where(counterpart[:, None], rng.uniform(2.0, 8.0, (n, tries)),
                 rng.uniform(12.0, 18.0, (n, tries)))
  angle = rng.uniform(0, 360, (n, tries))
  start = SkyCoord(np.repeat(t["ra"].to_numpy(), tries) * u.deg,
                   np.repeat(t["dec"].to_numpy(), tries) * u.deg)
  moved = start.directional_offset_by(angle.ravel() * u.deg, sep.ravel() * u.arcsec)
  home = _pixel_of(t["ra"], t["dec"], pixels)
  crosses = (_pixel_of(moved.ra.deg, moved.dec.deg, pixels).reshape(n, tries)
             != home[:, None])
  want = counterpart & (np.arange(n) % 2 == 1) & crosses.any(axis=1)
  pick = np.where(want, crosses.argmax(axis=1), 0)
  flat = np.arange(n) * tries + pick
  points = moved[flat]
  _, d1, _ = points.match_to_catalog_sky(galaxies, nthneighbor=1)
  _, d2, _ = points.match_to_catalog_sky(galaxies, nthneighbor=2)
  rows, truth = [], {}
  for i in range(n):
    name = f"c{i}" if counterpart[i] else f"d{i}"
    if counterpart[i] and d2[i].arcsec > 12.0:
      truth[name] = (t["id"][i], float(sep[i, pick[i]]), bool(crosses[i, pick[i]]))
    elif counterpart[i] or d1[i].arcsec <= 12.0:
      continue
    rows.append((name, float(points[i].ra.deg), float(points[i].dec.deg)))
  return rows, truth


@pytest.fixture(scope="session")
def known_pairs(hats_dir, export_dir):
  import hats
  pixels = hats.read_hats(hats_dir[0]).main_catalog.get_healpix_pixels()
  return _known_pairs(export_dir, pixels, np.random.default_rng(5))


def test_crossmatch_finds_every_known_pair_and_no_false_one(hats_dir, known_pairs,
                                                            dask_cluster, tmp_path):
  rows, truth = known_pairs
  assert sum(c for _, _, c in truth.values()) >= 3  # pairs across a partition border
  assert len(rows) - len(truth) >= 50  # decoys
  csv = tmp_path / "cat.csv"
  csv.write_text("name,RAJ2000,DEJ2000\n" + "".join(f"{n},{r!r},{d!r}\n" for n, r, d in rows))
  out = tmp_path / "matched.parquet"
  summary = crossmatch.crossmatch(hats_dir[0], csv, RADIUS, out, client=dask_cluster[1])
  got = pq.read_table(out).to_pandas()
  assert summary["matches"] == len(got) == len(truth)
  assert dict(zip(got["name"], got["lvm_id"])) == {k: v[0] for k, v in truth.items()}
  expected_sep = np.array([truth[n][1] for n in got["name"]])
  np.testing.assert_allclose(got["sep_arcsec"], expected_sep, atol=1e-4)
  assert list(got.columns) == ["name", "RAJ2000", "DEJ2000", "lvm_id", "lvm_ra", "lvm_dec",
                               "sep_arcsec", "embedding"]
  embeddings = read_embeddings(hats_dir[0], ["id", "embedding"]).to_pandas().set_index("id")
  np.testing.assert_array_equal(np.stack(got["embedding"]),
                                np.stack(embeddings.loc[got["lvm_id"], "embedding"]))


def test_crossmatch_cli_fits_catalogue_to_hats_on_an_existing_scheduler(
    hats_dir, known_pairs, dask_cluster, tmp_path, capsys):
  import lsdb
  from astropy.table import Table
  rows, truth = known_pairs
  fits = tmp_path / "cat.fits"
  Table({"name": [n for n, _, _ in rows], "RA": [r for _, r, _ in rows],
         "DEC": [d for _, _, d in rows]}).write(fits)
  out = tmp_path / "matches"
  assert cli.main(["crossmatch", "--embeddings", str(hats_dir[0]), "--catalogue", str(fits),
                   "--radius", str(RADIUS), "--out", str(out),
                   "--dask-address", dask_cluster[0].scheduler_address]) == 0
  assert f"{len(truth)} matches within {RADIUS} arcsec" in capsys.readouterr().out
  got = lsdb.read_hats(out).compute()
  assert sorted(got["name"]) == sorted(truth)
  assert {"lvm_id", "sep_arcsec", "embedding"} <= set(got.columns)


def test_crossmatch_refuses_a_radius_wider_than_the_margin(hats_dir, dask_cluster, tmp_path):
  csv = tmp_path / "one.csv"
  csv.write_text(f"ra,dec\n{RA0 + 0.5},{DEC0 + 0.5}\n")
  with pytest.raises(ValueError, match="margin cache is 20.0 arcsec wide"):
    crossmatch.crossmatch(hats_dir[0], csv, 30.0, tmp_path / "m.parquet",
                          client=dask_cluster[1])


def test_search_and_hitl_accept_a_hats_export(hats_dir, capsys):
  t = read_embeddings(hats_dir[0], ["id", "embedding"])
  first = t.column("id")[0].as_py()
  assert cli.main(["search", "--embeddings", str(hats_dir[0]), "--id", first, "-k", "3"]) == 0
  printed = capsys.readouterr().out
  emb = np.stack(t.column("embedding").to_numpy(zero_copy_only=False))
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  best = np.argsort(-(emb @ emb[0]))[1]
  assert t.column("id")[int(best)].as_py() in printed
  from lvm_jax.hitl import load_catalogue
  catalogue = load_catalogue(str(hats_dir[0]))
  assert catalogue.n == N - len(UNPLACED) and catalogue.embeddings.shape[1] == DIM
