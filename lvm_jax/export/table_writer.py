"""The one writer of tables with provenance: Parquet, CSV, FITS binary tables and VOTables.

`write_table(path, columns, provenance)` picks the format from the extension and stores the
provenance record (JSON) where each format keeps metadata: the Parquet schema metadata (key
`lvm_jax_provenance`), FITS header cards (`PROVJSON`, long-string CONTINUE cards, plus a few
short keys), VOTable INFO elements, or a sidecar `<file>.json` next to a CSV.

`write_fits` and `write_votable` write an astropy Table as it is (the export's copies, match
tables). FITS has no float16 (stored as float32) and its character columns are ASCII by the
standard, so text columns are stored as UTF-8 bytes and the header says so (`TXTENC =
'UTF-8'`); read them back with `Table.read(path, character_as_bytes=True)` and
`.decode("utf-8")`. VOTable stores Unicode as is.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Mapping

import numpy as np

PROVENANCE_KEY = "lvm_jax_provenance"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".fits": "fits",
           ".fit": "fits", ".vot": "votable", ".xml": "votable"}

# Short FITS keywords (and VOTable INFO names) for the headline provenance fields.
FITS_KEYS = {"lvm_jax_version": "LVMVER", "git_sha": "GITSHA", "alpha": "ALPHA",
             "strategy": "STRATEGY", "seed": "SEED", "embedding_source": "EMBSRC"}


def format_of(path: str | os.PathLike) -> str:
  """`csv`, `parquet`, `fits` or `votable` from the file's extension (ValueError otherwise)."""
  ext = os.path.splitext(os.fspath(path))[1].lower()
  if ext not in FORMATS:
    raise ValueError(f"unknown export format {ext!r}; use one of {sorted(FORMATS)}")
  return FORMATS[ext]


def astropy_table(columns: Mapping[str, Any], units: Mapping[str, str] | None = None):
  """An astropy Table of (N, ...) NumPy columns, float16 as float32, with `units` where named."""
  from astropy.table import Table  # pylint: disable=g-import-not-at-top
  table = Table()
  for name, values in columns.items():
    values = np.asarray(values)
    table[name] = values.astype(np.float32) if values.dtype == np.float16 else values
    if units and name in units:
      table[name].unit = units[name]
  return table


def utf8_text(table):
  """A copy of an astropy Table with every str column as UTF-8 bytes, TXTENC='UTF-8' in meta."""
  out = table.copy(copy_data=False)
  for name in out.colnames:
    if out[name].dtype.kind == "U":
      out.replace_column(name, np.char.encode(np.asarray(out[name]), "utf-8"))
  out.meta["TXTENC"] = "UTF-8"
  return out


def write_fits(table, path: str | os.PathLike, *, extname: str | None = None,
               header: Mapping[str, Any] | None = None) -> pathlib.Path:
  """An astropy Table as a FITS binary table (text as UTF-8 bytes); `header` cards are
  (value) or (value, comment), added after the table's `meta`."""
  from astropy.io import fits  # pylint: disable=g-import-not-at-top
  hdu = fits.table_to_hdu(utf8_text(table))
  if extname:
    hdu.name = extname
  for key, card in (header or {}).items():
    hdu.header[key] = card
  fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
  return pathlib.Path(path)


def write_votable(table, path: str | os.PathLike,
                  infos: Mapping[str, str] | None = None) -> pathlib.Path:
  """An astropy Table as a VOTable: its `meta` as astropy writes it, or, when `infos` is given,
  those INFO elements (name -> value) on the resource instead."""
  if infos is None:
    table.write(path, format="votable", overwrite=True)
    return pathlib.Path(path)
  from astropy.io.votable import from_table  # pylint: disable=g-import-not-at-top
  from astropy.io.votable.tree import Info  # pylint: disable=g-import-not-at-top
  plain = table.copy(copy_data=False)
  plain.meta.clear()
  vot = from_table(plain)
  resource = vot.resources[0]
  for name, value in infos.items():
    resource.infos.append(Info(name=name, value=value))
  vot.to_xml(os.fspath(path))
  return pathlib.Path(path)


def _arrow_table(columns, prov_json):
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  table = pa.table({k: pa.array(v) for k, v in columns.items()})
  return table.replace_schema_metadata({PROVENANCE_KEY: prov_json})


def _write_parquet(path, columns, prov):
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  pq.write_table(_arrow_table(columns, prov["json"]), path)


def _write_csv(path, columns, prov):
  import pyarrow.csv as pcsv  # pylint: disable=g-import-not-at-top
  pcsv.write_csv(_arrow_table(columns, prov["json"]), path)
  with open(path + ".json", "w", encoding="utf-8") as f:
    f.write(prov["json"])


def _short_keys(record: Mapping[str, Any]) -> dict[str, Any]:
  """FITS_KEYS cards of a provenance record: numbers as they are, the rest as str."""
  return {card: record[key] if isinstance(record[key], (int, float)) else str(record[key])
          for key, card in FITS_KEYS.items() if key in record}


def _write_fits(path, columns, prov):
  table = astropy_table(columns)
  table.meta.update(_short_keys(prov["record"]))
  write_fits(table, path, extname="LABELS",
             header={"PROVJSON": (prov["json"], "lvm_jax provenance (JSON)")})


def _write_votable(path, columns, prov):
  infos = {PROVENANCE_KEY: prov["json"]}
  infos.update({key: str(prov["record"][key]) for key in FITS_KEYS if key in prov["record"]})
  write_votable(astropy_table(columns), path, infos)


_WRITERS = {"csv": _write_csv, "parquet": _write_parquet, "fits": _write_fits,
            "votable": _write_votable}


def write_table(path: str | os.PathLike, columns: Mapping[str, np.ndarray],
                provenance: Mapping[str, Any]) -> str:
  """Writes equal-length `columns` to `path` (format by extension); returns the path.

  Args:
    columns: {name: (n,) array}; string columns as numpy unicode arrays.
    provenance: JSON-serialisable record stored in the file's metadata.
  """
  path = os.fspath(path)
  prov_json = json.dumps(provenance, default=str, sort_keys=True)
  _WRITERS[format_of(path)](path, columns, {"json": prov_json, "record": json.loads(prov_json)})
  return path
