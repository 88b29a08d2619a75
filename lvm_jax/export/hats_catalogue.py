"""An export as a HATS catalogue: HEALPix-partitioned Parquet with a margin cache.

    from lvm_jax.export import cluster, hats_catalogue
    with cluster.dask_client() as client:
      hats_catalogue.write_hats("emb/", "emb_hats/", client=client)
    import lsdb; lsdb.read_hats("emb_hats/")   # the catalogue, with its margin cache

The catalogue is written by hats-import's pipeline on a Dask cluster: the input part files are
read `chunk_rows` rows at a time, split by HEALPix pixel and reduced pixel by pixel, so memory
is bounded by the partition size, not by the export. Layout of OUT (a HATS collection):

| path | content |
| --- | --- |
| `OUT/collection.properties` | the collection: primary table `embeddings`, its default margin |
| `OUT/embeddings/` | the catalogue: `dataset/Norder=k/Dir=d/Npix=p.parquet`, `properties`, `partition_info.csv`, skymaps |
| `OUT/embeddings_<margin>arcs/` | the margin cache: rows within `margin_arcsec` of each partition's border |
| `OUT/lvm_jax_export.json` | provenance: the export's metadata (model, checkpoint, preprocessing, embedding), the HATS settings, code version and git SHA |
| `OUT/unplaced.parquet` | only with `skip_unplaced`: the rows left out for want of a sky position |

Partitions: HEALPix pixels of order 0 to `highest_order` (default 10, 3.4 arcmin), merged
until a pixel holds at most `max_rows` rows (default: about 256 MiB of embeddings per
partition). Columns: the export's (schema in `lvm_jax.export.schema`), the embedding as a
fixed_size_list<float>[D], plus `_healpix_29` (the HATS spatial index, sorted within a
partition, then by `id`). `properties` also carries `lvmjax_*` keys (version, git SHA,
embedding kind and dimension) and `lvmjax_provenance` naming the JSON file.

Rows without a sky position (NaN ra/dec, as in the simulated survey, or dec outside
[-90, 90]) cannot be partitioned: they are refused with an error naming the file, row and id,
unless `skip_unplaced`, which writes the placed rows and lists the others, with their file and
row, in `OUT/unplaced.parquet`; the count is in the provenance. No position is invented.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_jax import provenance as provenance_lib
from lvm_jax.export import schema
from lvm_jax.export.hats_reader import (CATALOGUE, HIVE_COLUMNS, PROVENANCE_FILE,  # noqa: F401
                                        SPATIAL_INDEX, is_hats, primary_dir, read_provenance,
                                        read_table)

UNPLACED_FILE = "unplaced.parquet"
DEFAULT_MARGIN_ARCSEC = 10.0
DEFAULT_HIGHEST_ORDER = 10
PARTITION_BYTES = 256 * 2**20


class UnplacedRowsError(ValueError):
  """Export rows without a usable sky position, which HATS cannot partition."""


def max_rows_for(dim: int, value_bytes: int = 4) -> int:
  """Rows per partition for a D-dim embedding: about `PARTITION_BYTES` of them."""
  return max(1000, PARTITION_BYTES // (dim * value_bytes + 128))


def _positions_ok(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
  return np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)


def _scan_placement(files: list[pathlib.Path]) -> tuple[list[np.ndarray], int]:
  """Per file, the (n,) bool mask of rows with a usable position; and the total rows."""
  masks, total = [], 0
  for f in files:
    t = pq.read_table(f, columns=["ra", "dec"])
    masks.append(_positions_ok(t.column("ra").to_numpy(), t.column("dec").to_numpy()))
    total += t.num_rows
  return masks, total


def _unplaced_table(files, masks) -> pa.Table:
  parts = []
  for f, ok in zip(files, masks):
    bad = np.flatnonzero(~ok)
    if bad.size:
      t = pq.read_table(f, columns=["id", "source_file", "source_index", "ra", "dec"])
      t = t.take(pa.array(bad))
      t = t.append_column("export_file", pa.array([f.name] * len(bad)))
      parts.append(t.append_column("export_row", pa.array(bad, pa.int64())))
  return pa.concat_tables(parts)


def _refusal(export, files, masks, total) -> UnplacedRowsError:
  bad = sum(int((~m).sum()) for m in masks)
  f, m = next((f, m) for f, m in zip(files, masks) if not m.all())
  row = int(np.flatnonzero(~m)[0])
  first = pq.read_table(f, columns=["id"]).column("id")[row].as_py()
  return UnplacedRowsError(
      f"{export}: {bad} of {total} rows have no sky position (ra/dec NaN or dec outside "
      f"[-90, 90]), first {f.name} row {row} (id {first!r}); HATS partitions by position: "
      f"pass skip_unplaced (--skip-unplaced) to write the placed rows and list the others in "
      f"{UNPLACED_FILE}")


def write_hats(export: str | pathlib.Path, out: str | pathlib.Path, *, client,
               margin_arcsec: float = DEFAULT_MARGIN_ARCSEC,
               highest_order: int = DEFAULT_HIGHEST_ORDER, max_rows: int | None = None,
               chunk_rows: int = 50_000, skip_unplaced: bool = False,
               overwrite: bool = False, progress: bool = False) -> dict[str, Any]:
  """Writes the export (OUT or OUT/embeddings of `lvm-jax export`) as a HATS collection `out`.

  Args:
    client: the `distributed.Client` the pipeline runs on (see `cluster.dask_client`).
    margin_arcsec: width of the margin cache; crossmatches up to this radius are exact
      across partition borders.
    highest_order: the finest HEALPix order of a partition.
    max_rows: rows per partition at most (default `max_rows_for(D)`).
    chunk_rows: rows read from an input file at a time.
    skip_unplaced: write the rows with a position and list the others (else refuse).
    overwrite: replace a finished catalogue at `out` (an unfinished one is resumed).
  Returns:
    A summary: rows written, unplaced rows, partitions, margin rows, paths.
  """
  from hats_import.catalog.file_readers import ParquetPyarrowReader
  from hats_import.collection.arguments import CollectionArguments
  from hats_import.pipeline import pipeline_with_client

  from lvm_jax.export import tables
  export, out = pathlib.Path(export), pathlib.Path(out).resolve()
  files = sorted(tables.parts_dir(export).glob("part-*.parquet"))
  if not files:
    raise FileNotFoundError(f"no part-*.parquet files under {tables.parts_dir(export)}")
  metadata = tables.read_metadata(export)
  if is_hats(out):
    if not overwrite:
      raise FileExistsError(f"{out} already holds a HATS catalogue (overwrite to replace it)")
    shutil.rmtree(out)
  masks, total = _scan_placement(files)
  placed = int(sum(int(m.sum()) for m in masks))
  if placed < total and not skip_unplaced:
    raise _refusal(export, files, masks, total)
  if placed == 0:
    raise UnplacedRowsError(f"{export}: none of its {total} rows has a sky position")
  out.mkdir(parents=True, exist_ok=True)
  inputs = files
  staging = out / "_placed_input"
  if placed < total:
    pq.write_table(_unplaced_table(files, masks), out / UNPLACED_FILE)
    staging.mkdir(exist_ok=True)
    inputs = []
    for f, ok in zip(files, masks):
      if ok.all():
        inputs.append(f)
      elif ok.any():
        pq.write_table(pq.read_table(f).filter(pa.array(ok)), staging / f.name)
        inputs.append(staging / f.name)
  emb = metadata.get("embedding", {})
  dim = int(emb.get("dim") or pq.read_schema(files[0]).field("embedding").type.list_size)
  value_bytes = 2 if emb.get("dtype") == "float16" else 4
  max_rows = int(max_rows or max_rows_for(dim, value_bytes))
  prov = provenance_lib.provenance(
      export=str(export.resolve()), export_metadata=metadata,
      hats={"catalogue": CATALOGUE, "margin_arcsec": float(margin_arcsec),
            "highest_order": int(highest_order), "max_rows": max_rows,
            "rows": placed, "unplaced_rows": total - placed})
  properties = {
      "obs_title": f"lvm-jax embeddings ({emb.get('kind', '?')}, D={dim})",
      "lvmjax_version": prov["lvm_jax_version"], "lvmjax_git_sha": prov["git_sha"] or "unknown",
      "lvmjax_embedding": str(emb.get("kind", "unknown")), "lvmjax_embedding_dim": str(dim),
      "lvmjax_schema_version": str(metadata.get("schema_version", schema.SCHEMA_VERSION)),
      "lvmjax_provenance": PROVENANCE_FILE}
  args = (CollectionArguments(output_artifact_name=out.name, output_path=out.parent,
                              progress_bar=progress, addl_hats_properties=properties)
          .catalog(output_artifact_name=CATALOGUE, input_file_list=[str(p) for p in inputs],
                   file_reader=ParquetPyarrowReader(chunksize=chunk_rows),
                   ra_column="ra", dec_column="dec", sort_columns="id",
                   pixel_threshold=max_rows, highest_healpix_order=int(highest_order),
                   expected_total_rows=placed)
          .add_margin(margin_threshold=float(margin_arcsec), is_default=True))
  pipeline_with_client(args, client)
  shutil.rmtree(staging, ignore_errors=True)
  (out / PROVENANCE_FILE).write_text(json.dumps(prov, indent=1, sort_keys=True, default=str))
  return summary(out)


def summary(path: str | pathlib.Path) -> dict[str, Any]:
  """Rows, partitions (per order), margin rows and paths of a HATS collection."""
  import hats
  path = pathlib.Path(path)
  collection = hats.read_hats(path)
  main = collection.main_catalog
  orders: dict[int, int] = {}
  for pixel in main.get_healpix_pixels():
    orders[int(pixel.order)] = orders.get(int(pixel.order), 0) + 1
  margin = hats.read_hats(path / collection.default_margin) if collection.default_margin else None
  unplaced = path / UNPLACED_FILE
  return {"path": str(path), "rows": int(main.catalog_info.total_rows),
          "partitions": len(main.get_healpix_pixels()), "partitions_per_order": orders,
          "margin": None if margin is None else str(path / collection.default_margin),
          "margin_arcsec": None if margin is None else margin.catalog_info.margin_threshold,
          "margin_rows": None if margin is None else int(margin.catalog_info.total_rows),
          "unplaced_rows": pq.read_metadata(unplaced).num_rows if unplaced.is_file() else 0}
