from __future__ import annotations

import json

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.io.votable import parse

from lvm_jax.hitl import Session

COLUMNS = {"id", "ra", "dec", "label", "label_name", "grade", "tags", "note", "user", "route",
           "round", "time", "score", "score_at_label"}


@pytest.fixture
def session(catalogue, small):
  x, truth, ra, dec = catalogue
  s = Session(x, ra=ra, dec=dec, per_round=4, seed=7, user="ana", **small)
  s.label([5, 6, 7], [1, 0, "unsure"], grade=["A", None, "C"], tags=[["arc", "blue"], [],
          ["artefact"]], note=[None, "spiral", "ghost"])
  ids = s.next_round()
  s.label(ids[:2], [0, 1])
  return s, ra


def _check_columns(names, rows):
  assert COLUMNS <= set(names)
  assert rows["label"][:3] == [1, 0, -1]
  assert rows["grade"][0] == "A" and rows["tags"][0] == "arc,blue" and rows["note"][1] == "spiral"
  assert rows["route"][:3] == ["prompt"] * 3 and rows["route"][3] == "recommended"
  assert rows["round"] == [1, 1, 1, 2, 2] and rows["user"][0] == "ana"
  assert np.isnan(rows["score_at_label"][0]) and not np.isnan(rows["score"][0])


def _check_provenance(prov):
  assert prov["alpha"] == 0.5 and prov["strategy"] == "paper" and prov["seed"] == 7
  assert prov["git_sha"] and prov["lvm_jax_version"] and "array" in prov["embedding_source"]


def test_parquet(tmp_path, session):
  s, ra = session
  t = pq.read_table(s.export(tmp_path / "l.parquet"))
  rows = t.to_pydict()
  _check_columns(t.column_names, rows)
  assert rows["ra"][0] == pytest.approx(ra[5])
  _check_provenance(json.loads(t.schema.metadata[b"lvm_jax_provenance"]))


def test_csv_with_sidecar(tmp_path, session):
  s, _ = session
  path = s.export(tmp_path / "l.csv")
  t = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=False))
  rows = {k: [("" if v is None else v) for v in vals] for k, vals in t.to_pydict().items()}
  rows["score_at_label"] = [float("nan") if v is None else v for v in t["score_at_label"].to_pylist()]
  _check_columns(t.column_names, rows)
  with open(path + ".json", encoding="utf-8") as f:
    _check_provenance(json.load(f))


def test_fits(tmp_path, session):
  s, _ = session
  with fits.open(s.export(tmp_path / "l.fits")) as hdul:
    hdu = hdul["LABELS"]
    rows = {n: [v.strip() if isinstance(v, str) else v for v in hdu.data[n].tolist()]
            for n in hdu.columns.names}
    _check_columns(hdu.columns.names, rows)
    _check_provenance(json.loads(hdu.header["PROVJSON"]))
    assert hdu.header["STRATEGY"] == "paper" and hdu.header["ALPHA"] == 0.5


@pytest.mark.parametrize("ext", [".vot", ".xml"])
def test_votable(tmp_path, session, ext):
  s, _ = session
  vot = parse(s.export(tmp_path / ("l" + ext)))
  t = vot.get_first_table().to_table()
  rows = {n: [float(v) if n.startswith("score") and np.ma.is_masked(v) is False else v
              for v in t[n].filled(np.nan).tolist()] if n.startswith("score")
          else t[n].tolist() for n in t.colnames}
  _check_columns(t.colnames, rows)
  infos = {i.name: i.value for i in vot.resources[0].infos}
  _check_provenance(json.loads(infos["lvm_jax_provenance"]))


def test_unknown_extension(tmp_path, session):
  with pytest.raises(ValueError, match="format"):
    session[0].export(tmp_path / "l.txt")
