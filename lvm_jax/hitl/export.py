"""Writes a labelled sample as CSV, Parquet, FITS or VOTable, with provenance in its metadata.

Provenance (a JSON record) goes into the Parquet schema metadata (key `lvm_jax_provenance`),
FITS header cards (`PROVJSON`, long-string CONTINUE cards, plus a few short keys), VOTable
INFO elements, or a sidecar `<file>.json` next to a CSV.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

PROVENANCE_KEY = "lvm_jax_provenance"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".fits": "fits",
           ".fit": "fits", ".vot": "votable", ".xml": "votable"}

# Short FITS keywords for the headline provenance fields.
_FITS_KEYS = {"lvm_jax_version": "LVMVER", "git_sha": "GITSHA", "alpha": "ALPHA",
              "strategy": "STRATEGY", "seed": "SEED", "embedding_source": "EMBSRC"}


def format_of(path: str | os.PathLike) -> str:
  ext = os.path.splitext(os.fspath(path))[1].lower()
  if ext not in FORMATS:
    raise ValueError(f"unknown export format {ext!r}; use one of {sorted(FORMATS)}")
  return FORMATS[ext]


def write_table(path: str | os.PathLike, columns: dict[str, np.ndarray],
                provenance: dict[str, Any]) -> str:
  """Writes equal-length `columns` to `path` (format by extension); returns the path.

  Args:
    columns: {name: (n,) array}; string columns as numpy unicode arrays.
    provenance: JSON-serialisable record stored in the file's metadata.
  """
  path = os.fspath(path)
  writer = {"csv": _write_csv, "parquet": _write_parquet, "fits": _write_fits,
            "votable": _write_votable}[format_of(path)]
  writer(path, columns, json.dumps(provenance, default=str, sort_keys=True))
  return path


def _arrow_table(columns, prov_json):
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  table = pa.table({k: pa.array(v) for k, v in columns.items()})
  return table.replace_schema_metadata({PROVENANCE_KEY: prov_json})


def _write_parquet(path, columns, prov_json):
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  pq.write_table(_arrow_table(columns, prov_json), path)


def _write_csv(path, columns, prov_json):
  import pyarrow.csv as pcsv  # pylint: disable=g-import-not-at-top
  pcsv.write_csv(_arrow_table(columns, prov_json), path)
  with open(path + ".json", "w", encoding="utf-8") as f:
    f.write(prov_json)


def _astropy_table(columns, prov_json):
  from astropy.table import Table  # pylint: disable=g-import-not-at-top
  table = Table({k: np.asarray(v) for k, v in columns.items()})
  prov = json.loads(prov_json)
  for key, card in _FITS_KEYS.items():
    if key in prov:
      value = prov[key]
      table.meta[card] = value if isinstance(value, (int, float)) else str(value)
  return table, prov


def _write_fits(path, columns, prov_json):
  from astropy.io import fits  # pylint: disable=g-import-not-at-top
  table, _ = _astropy_table(columns, prov_json)
  hdu = fits.BinTableHDU(table, name="LABELS")
  hdu.header["PROVJSON"] = (prov_json, "lvm_jax provenance (JSON)")
  fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def _write_votable(path, columns, prov_json):
  from astropy.io.votable import from_table  # pylint: disable=g-import-not-at-top
  from astropy.io.votable.tree import Info  # pylint: disable=g-import-not-at-top
  table, prov = _astropy_table(columns, prov_json)
  table.meta.clear()
  vot = from_table(table)
  resource = vot.resources[0]
  resource.infos.append(Info(name=PROVENANCE_KEY, value=prov_json))
  for key in _FITS_KEYS:
    if key in prov:
      resource.infos.append(Info(name=key, value=str(prov[key])))
  vot.to_xml(path)
