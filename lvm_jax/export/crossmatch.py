"""Cross-match an external catalogue against an export on the sky, with LSDB on Dask.

    from lvm_jax.export import cluster, crossmatch
    with cluster.dask_client() as client:
      crossmatch.crossmatch("emb_hats/", "gaia.csv", 1.0, "matched.parquet", client=client)

Each catalogue row gets its nearest exported galaxy within `radius_arcsec` (LSDB's k-d tree
crossmatch, `n_neighbors` = 1 by default); rows with none are dropped. The catalogue is a HATS
catalogue, or a CSV, FITS binary table or Parquet file with ra, dec in degrees (column names
as in `RA_NAMES`, `DEC_NAMES`, any case), converted to HATS in a work folder first (rows
without a finite position are left out: they cannot match). The export is a HATS catalogue of
an export (`lvm-jax export-hats`; its margin cache must be at least the radius wide, so that
matches across partition borders are found) or a plain export, converted the same way.

Output columns: the catalogue's own, then `lvm_id`, `lvm_ra`, `lvm_dec` (deg), `sep_arcsec`
and `embedding` (fixed_size_list; CSV leaves it out, FITS stores a float32 vector column).
Rows come partition by partition (HEALPix order of the catalogue), not in the input order.
Parquet and CSV outputs are written one partition at a time (memory bounded by a partition);
a folder path (no suffix) writes a HATS catalogue of the matches; FITS is assembled in memory.
"""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RA_NAMES = ("ra", "ra_deg", "raj2000", "ra_icrs")
DEC_NAMES = ("dec", "dec_deg", "dej2000", "decj2000", "de_icrs", "dec_icrs")
EXPORT_COLUMNS = {"id": "lvm_id", "ra": "lvm_ra", "dec": "lvm_dec", "embedding": "embedding"}
DISTANCE = "sep_arcsec"
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".fits", ".fit")


def _column(names, wanted, what: str, source) -> str:
  lower = {c.lower(): c for c in names}
  for name in wanted:
    if name in lower:
      return lower[name]
  raise KeyError(f"{source}: no {what} column (looked for {wanted}); has {list(names)}")


def _batches(path: pathlib.Path, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
  """A CSV, Parquet or FITS table as Arrow record batches (FITS: vector columns as lists)."""
  suffix = path.suffix.lower()
  if suffix == ".csv":
    import pyarrow.csv as pa_csv
    yield from pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 24))
  elif suffix in (".parquet", ".pq"):
    yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
  elif suffix in (".fits", ".fit"):
    from astropy.table import Table

    from lvm_jax.export import schema
    table = Table.read(path, memmap=True)
    for start in range(0, len(table), batch_rows):
      part = table[start:start + batch_rows]
      arrays = {}
      for name in part.colnames:
        values = np.asarray(part[name])
        if values.dtype.kind in "SU":
          arrays[name] = pa.array(values.astype(str))
        elif values.ndim > 1:
          arrays[name] = schema.fixed_list(values, pa.from_numpy_dtype(values.dtype.newbyteorder("=")))
        else:
          arrays[name] = pa.array(values.astype(values.dtype.newbyteorder("=")))
      yield pa.RecordBatch.from_pydict(arrays)
  else:
    raise ValueError(f"{path}: a catalogue is a HATS folder or a {', '.join(TABLE_SUFFIXES)} file")


def table_to_hats(path: str | pathlib.Path, work_dir: str | pathlib.Path, *, client,
                  margin_arcsec: float | None = None) -> tuple[pathlib.Path, dict[str, Any]]:
  """A CSV / Parquet / FITS catalogue with ra, dec (deg) as a HATS catalogue in `work_dir`.

  Returns (catalogue path, {"rows", "rows_without_position", "ra_column", "dec_column"}).
  Rows whose position is not finite are left out and counted.
  """
  from hats_import.catalog.file_readers import ParquetPyarrowReader
  from hats_import.collection.arguments import CollectionArguments
  from hats_import.pipeline import pipeline_with_client
  path, work_dir = pathlib.Path(path), pathlib.Path(work_dir).resolve()
  work_dir.mkdir(parents=True, exist_ok=True)
  staged = work_dir / "staged.parquet"
  writer, ra_name, dec_name, rows, dropped = None, None, None, 0, 0
  for batch in _batches(path):
    if writer is None:
      ra_name = _column(batch.schema.names, RA_NAMES, "ra", path)
      dec_name = _column(batch.schema.names, DEC_NAMES, "dec", path)
    ra = np.asarray(batch.column(ra_name).to_numpy(zero_copy_only=False), np.float64)
    dec = np.asarray(batch.column(dec_name).to_numpy(zero_copy_only=False), np.float64)
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    dropped += int((~ok).sum())
    rows += int(ok.sum())
    table = pa.Table.from_batches([batch]).filter(pa.array(ok)).replace_schema_metadata(None)
    writer = writer or pq.ParquetWriter(staged, table.schema)
    writer.write_table(table)
  if writer is None:
    raise ValueError(f"{path}: the catalogue is empty")
  writer.close()
  if rows == 0:
    raise ValueError(f"{path}: none of its {dropped} rows has a finite ra, dec")
  name = "catalogue"
  args = CollectionArguments(output_artifact_name=name, output_path=work_dir,
                             progress_bar=False).catalog(
      output_artifact_name=name, input_file_list=[str(staged)],
      file_reader=ParquetPyarrowReader(chunksize=100_000), ra_column=ra_name,
      dec_column=dec_name, pixel_threshold=500_000, expected_total_rows=rows)
  if margin_arcsec:
    args = args.add_margin(margin_threshold=float(margin_arcsec), is_default=True)
  pipeline_with_client(args, client)
  staged.unlink()
  return work_dir / name, {"rows": rows, "rows_without_position": dropped,
                           "ra_column": ra_name, "dec_column": dec_name}


def _open_export(embeddings: pathlib.Path, radius_arcsec: float, work_dir: pathlib.Path,
                 client):
  """The export as an LSDB catalogue with a margin cache of at least the radius."""
  import lsdb

  from lvm_jax.export import hats_catalogue
  path = embeddings
  if not hats_catalogue.is_hats(embeddings):
    path = work_dir / "export_hats"
    hats_catalogue.write_hats(embeddings, path, client=client, skip_unplaced=True,
                              margin_arcsec=max(radius_arcsec, hats_catalogue.DEFAULT_MARGIN_ARCSEC))
  catalogue = lsdb.read_hats(path, columns=list(EXPORT_COLUMNS))
  margin = catalogue.margin
  threshold = None if margin is None else margin.hc_structure.catalog_info.margin_threshold
  if threshold is None or threshold < radius_arcsec:
    raise ValueError(f"{embeddings}: its margin cache is {threshold} arcsec wide, less than the "
                     f"radius {radius_arcsec} arcsec: matches across partition borders would "
                     f"be lost; rewrite it with `lvm-jax export-hats --margin "
                     f"{radius_arcsec}` (or more)")
  return catalogue


def _open_catalogue(catalogue: pathlib.Path, work_dir: pathlib.Path, client):
  import lsdb

  from lvm_jax.export import hats_catalogue
  if hats_catalogue.is_hats(catalogue):
    return lsdb.read_hats(catalogue), {}
  path, info = table_to_hats(catalogue, work_dir / "catalogue_hats", client=client)
  return lsdb.read_hats(path), info


def _arrow(df, left_columns: list[str]) -> pa.Table:
  """A partition of the matches (pandas) as Arrow with the documented column names."""
  renames = {f"{c}_lvm": new for c, new in EXPORT_COLUMNS.items()}
  renames["_dist_arcsec"] = DISTANCE
  order = left_columns + list(EXPORT_COLUMNS.values())
  order.insert(len(left_columns) + 3, DISTANCE)
  table = pa.Table.from_pandas(df, preserve_index=False)
  table = table.rename_columns([renames.get(n, n.removesuffix("_cat")) for n in
                                table.column_names])
  return table.select(order).replace_schema_metadata(None)


def _partitions(result, left_columns: list[str]) -> Iterator[pa.Table]:
  """The matches, one Arrow table per partition, computed one at a time; at least one
  (empty) table when nothing matched."""
  import dask
  count = 0
  for part in result.to_delayed():
    count += 1
    yield _arrow(dask.compute(part)[0], left_columns)
  if not count:
    yield _arrow(result.meta, left_columns)


def crossmatch(embeddings: str | pathlib.Path, catalogue: str | pathlib.Path,
               radius_arcsec: float, out: str | pathlib.Path, *, client,
               n_neighbors: int = 1, work_dir: str | pathlib.Path | None = None
               ) -> dict[str, Any]:
  """Joins each `catalogue` row to its nearest exported galaxy within `radius_arcsec`.

  Args:
    embeddings: a HATS catalogue of an export, or an export folder (converted).
    catalogue: a HATS catalogue, or a .csv / .parquet / .fits table with ra, dec (deg).
    out: .parquet, .csv or .fits file, or a folder for a HATS catalogue of the matches.
    client: the `distributed.Client` to run on.
    n_neighbors: matches kept per catalogue row (nearest first).
    work_dir: where converted inputs go (default: a temporary folder, removed after).
  Returns:
    {"matches", "out", "radius_arcsec"} plus, for a converted table, its row counts.
  """
  if radius_arcsec <= 0:
    raise ValueError(f"radius must be positive, got {radius_arcsec} arcsec")
  out = pathlib.Path(out)
  with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
    tmp = pathlib.Path(tmp)
    right = _open_export(pathlib.Path(embeddings), radius_arcsec, tmp, client)
    left, info = _open_catalogue(pathlib.Path(catalogue), tmp, client)
    left_columns = list(left.columns)
    result = left.crossmatch(right, n_neighbors=n_neighbors, radius_arcsec=radius_arcsec,
                             suffixes=("_cat", "_lvm"), suffix_method="all_columns",
                             require_right_margin=True,
                             log_changes=False)
    matches = _write(result, left_columns, out)
  return {"matches": matches, "out": str(out), "radius_arcsec": radius_arcsec, **info}


def _write(result, left_columns: list[str], out: pathlib.Path) -> int:
  suffix = out.suffix.lower()
  if not suffix:
    renames = {f"{c}_lvm": new for c, new in EXPORT_COLUMNS.items()}
    renames.update({f"{c}_cat": c for c in left_columns}, _dist_arcsec=DISTANCE)
    renamed = result.rename(renames)
    renamed.to_hats(out, catalog_name=out.name, progress_bar=False, error_if_empty=False)
    import hats
    written = hats.read_hats(out)
    written = getattr(written, "main_catalog", written)
    return int(written.catalog_info.total_rows)
  if suffix in (".fits", ".fit"):
    table = pa.concat_tables(list(_partitions(result, left_columns)))
    write_table(table, out)
    return table.num_rows
  if suffix not in (".parquet", ".csv"):
    raise ValueError(f"{out}: write .parquet, .csv, .fits or a folder (HATS)")
  writer, rows = None, 0
  for table in _partitions(result, left_columns):
    if suffix == ".csv":
      table = table.drop_columns(["embedding"])
    if writer is None:
      if suffix == ".csv":
        import pyarrow.csv as pa_csv
        writer = pa_csv.CSVWriter(out, table.schema)
      else:
        writer = pq.ParquetWriter(out, table.schema)
    writer.write_table(table)
    rows += table.num_rows
  writer.close()
  return rows


def write_table(table: pa.Table, path: str | pathlib.Path) -> pathlib.Path:
  """Writes a match table as FITS (embedding as a float32 vector column, with units)."""
  from lvm_jax.export import table_writer, tables
  units = {"lvm_ra": "deg", "lvm_dec": "deg", DISTANCE: "arcsec"}
  return table_writer.write_fits(
      table_writer.astropy_table(tables.catalogue_arrays(table), units), path)
