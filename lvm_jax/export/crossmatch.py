"""Cross-match an external catalogue (CSV with ra, dec in degrees) against an export.

Each catalogue row gets its nearest exported galaxy (astropy `match_to_catalog_sky`); rows with
none within `radius_arcsec` are dropped. Output columns: the catalogue's own, then `lvm_id`,
`lvm_ra`, `lvm_dec` (deg), `sep_arcsec`, and `embedding` (Parquet only; CSV and FITS get it as
a vector column where the format allows: FITS yes, CSV no).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pyarrow as pa

RA_NAMES = ("ra", "ra_deg", "raj2000", "ra_icrs")
DEC_NAMES = ("dec", "dec_deg", "dej2000", "decj2000", "de_icrs", "dec_icrs")


def _column(table, names, what: str) -> str:
  lower = {c.lower(): c for c in table.column_names}
  for name in names:
    if name in lower:
      return lower[name]
  raise KeyError(f"catalogue has no {what} column (looked for {names}); has {table.column_names}")


def crossmatch(out: str | pathlib.Path, catalogue_csv: str | pathlib.Path,
               radius_arcsec: float) -> pa.Table:
  """The catalogue rows with an exported galaxy within `radius_arcsec`, joined to it."""
  import pyarrow.csv as pa_csv
  from astropy import units as u
  from astropy.coordinates import SkyCoord

  from lvm_jax.export import tables
  catalogue = pa_csv.read_csv(catalogue_csv)
  ra = catalogue.column(_column(catalogue, RA_NAMES, "ra")).to_numpy().astype(np.float64)
  dec = catalogue.column(_column(catalogue, DEC_NAMES, "dec")).to_numpy().astype(np.float64)
  export = tables.read_embeddings(out, ["id", "ra", "dec", "embedding"])
  coords = SkyCoord(export.column("ra").to_numpy() * u.deg,
                    export.column("dec").to_numpy() * u.deg)
  index, sep, _ = SkyCoord(ra * u.deg, dec * u.deg).match_to_catalog_sky(coords)
  sep = sep.to(u.arcsec).value
  keep = np.flatnonzero(sep <= radius_arcsec)
  matched = export.take(pa.array(index[keep]))
  result = catalogue.take(pa.array(keep))
  result = result.append_column("lvm_id", matched.column("id"))
  result = result.append_column("lvm_ra", matched.column("ra"))
  result = result.append_column("lvm_dec", matched.column("dec"))
  result = result.append_column("sep_arcsec", pa.array(sep[keep]))
  return result.append_column("embedding", matched.column("embedding"))


def write_table(table: pa.Table, path: str | pathlib.Path) -> pathlib.Path:
  """Writes by suffix: .parquet, .csv (without the embedding) or .fits."""
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  if suffix == ".parquet":
    import pyarrow.parquet as pq
    pq.write_table(table, path)
  elif suffix == ".csv":
    import pyarrow.csv as pa_csv
    pa_csv.write_csv(table.drop_columns(["embedding"]), path)
  elif suffix in (".fits", ".fit"):
    from astropy.table import Table
    t = Table()
    for name in table.column_names:
      col = table.column(name)
      if pa.types.is_fixed_size_list(col.type):
        values = col.combine_chunks().flatten().to_numpy(zero_copy_only=False)
        t[name] = values.reshape(len(col), col.type.list_size).astype(np.float32)
      elif pa.types.is_string(col.type):
        t[name] = np.asarray(col.to_pylist(), dtype=str)
      else:
        t[name] = col.to_numpy()
    for name in ("lvm_ra", "lvm_dec"):
      t[name].unit = "deg"
    t["sep_arcsec"].unit = "arcsec"
    t.write(path, overwrite=True)
  else:
    raise ValueError(f"{path}: write .parquet, .csv or .fits")
  return path
