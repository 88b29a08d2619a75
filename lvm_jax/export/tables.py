"""Reading an export, and FITS binary table / VOTable copies of it (astropy, with units).

`read_catalogue` is the one reader of exported embeddings as NumPy columns. The copies are
written by `lvm_jax.export.table_writer`: FITS has no float16, so embeddings are written as
float32 there; FITS character columns are ASCII by the standard, so text columns (`id`,
`source_file`, carried strings) are stored as UTF-8 bytes and the header says so (`TXTENC =
'UTF-8'`); read them back with `Table.read(path, character_as_bytes=True)` and
`.decode("utf-8")` (`read_fits_text`). VOTable stores Unicode as is. Header keywords (FITS) and
`meta` (VOTable) carry the checkpoint, step, embedding, code version and git SHA, and the model
config and preprocessing as JSON strings.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_jax.export import hats_reader, schema, table_writer
from lvm_jax.export.table_writer import utf8_text  # noqa: F401  (re-exported)

SUFFIXES = {"fits": "embeddings.fits", "votable": "embeddings.vot"}


def parts_dir(out: str | pathlib.Path) -> pathlib.Path:
  """The Parquet dataset folder of an export (accepts OUT or OUT/embeddings)."""
  out = pathlib.Path(out)
  return out / schema.PARTS_DIR if (out / schema.PARTS_DIR).is_dir() else out


def read_embeddings(out: str | pathlib.Path, columns: Sequence[str] | None = None) -> pa.Table:
  """The whole export as one Arrow table (rows in chunk order); `columns` to read fewer.

  `out` may also be a HATS catalogue of an export (`lvm-jax export-hats`): its rows come in
  partition order, without the margin cache.
  """
  if hats_reader.is_hats(out):
    return hats_reader.read_table(out, columns)
  files = sorted(parts_dir(out).glob("part-*.parquet"))
  if not files:
    raise FileNotFoundError(f"no part-*.parquet files under {parts_dir(out)}")
  return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def read_metadata(out: str | pathlib.Path) -> dict[str, Any]:
  """The export metadata (`schema.METADATA_KEY`) of the first part file (of a HATS
  catalogue: the one recorded in its provenance file)."""
  if hats_reader.is_hats(out):
    return hats_reader.read_provenance(out).get("export_metadata", {})
  first = sorted(parts_dir(out).glob("part-*.parquet"))[0]
  return schema.read_metadata(pq.read_schema(first))


def numpy_column(column: pa.ChunkedArray) -> np.ndarray:
  """An Arrow column as NumPy: fixed-size lists as (N, width) (variable lists of one length
  too), strings as str arrays."""
  t = column.type
  if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    width = t.list_size if pa.types.is_fixed_size_list(t) else len(flat) // max(len(column), 1)
    if len(flat) != len(column) * width:
      raise ValueError(f"column of {t}: rows of different lengths")
    return flat.reshape(len(column), width)
  if pa.types.is_string(t) or pa.types.is_large_string(t):
    return np.asarray(column.to_pylist(), dtype=str)
  return column.to_numpy()


def catalogue_arrays(table: pa.Table) -> dict[str, np.ndarray]:
  """An Arrow table as NumPy columns (`numpy_column`): `embedding` flattened once to (N, D),
  other fixed-size lists as (N, width), strings as str arrays, the rest as their dtype."""
  return {name: numpy_column(table.column(name)) for name in table.column_names}


def read_catalogue(path: str | pathlib.Path,
                   columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
  """The one reader of exported embeddings: an export folder (OUT or OUT/embeddings), its HATS
  catalogue, or a single Parquet file, as NumPy columns (`catalogue_arrays`).

  `embedding` is (N, D) in the stored dtype (float16 or float32); `id`, `source_file` and
  other text columns are str arrays; `ra`, `dec` in degrees; `columns` to read fewer.
  """
  path = pathlib.Path(path)
  table = read_embeddings(path, columns) if path.is_dir() else pq.read_table(path, columns=columns)
  return catalogue_arrays(table)


def astropy_table(out: str | pathlib.Path):
  """The export as an astropy Table with units and provenance in `meta`."""
  md = read_metadata(out)
  result = table_writer.astropy_table(catalogue_arrays(read_embeddings(out)), schema.UNITS)
  result.meta.update({
      "LVMSCHEM": md.get("schema_version"), "CKPTPATH": md["checkpoint"]["path"],
      "CKPTSTEP": md["checkpoint"]["step"], "EMBED": md["embedding"]["kind"],
      "EMBDIM": md["embedding"]["dim"], "LVMVER": md.get("lvm_jax_version"),
      "GITSHA": md.get("git_sha"), "CDTYPE": md.get("compute_dtype"),
      "MODEL": json.dumps(md.get("model"), sort_keys=True),
      "PREPROC": json.dumps(md.get("preprocessing"), sort_keys=True)})
  return result


def read_fits_text(path: str | pathlib.Path, column: str = "id") -> list[str]:
  """A text column of an `embeddings.fits` copy, decoded from its UTF-8 bytes."""
  from astropy.table import Table
  values = np.asarray(Table.read(path, character_as_bytes=True)[column])
  return [bytes(v).decode("utf-8") for v in values]


def write_formats(out: str | pathlib.Path, formats: Sequence[str]) -> list[pathlib.Path]:
  """Writes OUT/embeddings.fits and/or OUT/embeddings.vot; returns their paths."""
  out = pathlib.Path(out)
  table = astropy_table(out)
  writers = {"fits": table_writer.write_fits, "votable": table_writer.write_votable}
  return [writers[fmt](table, out / SUFFIXES[fmt]) for fmt in formats]
