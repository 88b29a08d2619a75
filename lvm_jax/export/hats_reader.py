"""Reading a HATS collection written by `lvm_jax.export.hats_catalogue.write_hats`: is it one,
its primary catalogue, its provenance and its rows (the layout is in `hats_catalogue`).

Kept apart from the writer so that the export's one reader (`lvm_jax.export.tables`) opens
HATS exports without importing hats-import.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CATALOGUE = "embeddings"
PROVENANCE_FILE = "lvm_jax_export.json"
# hats-import's pixel folder columns, dropped when a catalogue is read back as a table.
HIVE_COLUMNS = ("Norder", "Dir", "Npix")
SPATIAL_INDEX = "_healpix_29"


def is_hats(path: str | pathlib.Path) -> bool:
  """True for a HATS collection or catalogue folder."""
  path = pathlib.Path(path)
  return path.is_dir() and any((path / f).is_file() for f in
                               ("collection.properties", "hats.properties", "properties"))


def primary_dir(path: str | pathlib.Path) -> pathlib.Path:
  """The primary catalogue of a HATS collection (or the catalogue itself)."""
  path = pathlib.Path(path)
  props = path / "collection.properties"
  if props.is_file():
    for line in props.read_text().splitlines():
      key, _, value = line.partition("=")
      if key.strip() == "hats_primary_table_url":
        return path / value.strip()
  return path


def read_provenance(path: str | pathlib.Path) -> dict[str, Any]:
  """The provenance record of a HATS collection written by `write_hats` ({} if absent)."""
  f = pathlib.Path(path) / PROVENANCE_FILE
  return json.loads(f.read_text()) if f.is_file() else {}


def read_table(path: str | pathlib.Path, columns=None) -> pa.Table:
  """The primary catalogue's rows as one Arrow table (partition order; no margin rows,
  no `_healpix_29` or pixel-folder columns)."""
  import pyarrow.dataset as ds
  dataset_dir = primary_dir(path) / "dataset"
  files = sorted(p for p in dataset_dir.rglob("Npix=*") if p.is_file())
  if not files:
    raise FileNotFoundError(f"no HATS partitions under {dataset_dir}")
  names = [n for n in pq.read_schema(files[0]).names
           if n not in HIVE_COLUMNS and n != SPATIAL_INDEX]
  table = ds.dataset([str(f) for f in files], format="parquet").to_table(
      columns=list(columns) if columns is not None else names)
  return table.replace_schema_metadata(None)
