"""The export's output layout and its Parquet schema (frozen: version `SCHEMA_VERSION`).

An export directory OUT holds:

| path | content |
| --- | --- |
| `OUT/embeddings/part-00000.parquet`, ... | one file per chunk of source records, in source order |
| `OUT/rejects.parquet` | images that failed `validate_image` (or could not be read) |
| `OUT/manifest.json` | finished chunks, the run's fingerprint and, once complete, the summary |
| `OUT/embeddings.fits`, `OUT/embeddings.vot` | optional copies (`--format fits,votable`) |

`pyarrow.parquet.read_table("OUT/embeddings")` reads the whole dataset. Chunk k holds the
source records [k * chunk_size, (k + 1) * chunk_size) that passed validation, in source order.

Columns of every part file, one row per galaxy:

| column | Arrow type | unit | meaning |
| --- | --- | --- | --- |
| `id` | string | | `release_brickid_objid` (HDF5 survey), else the source's id (FITS: stem) |
| `source_file` | string | | the file the image came from |
| `source_index` | int64 | | the row within `source_file` (0 for one-cutout FITS files) |
| `ra`, `dec` | float64 | deg | ICRS coordinates of the stamp centre (NaN when unknown) |
| `box` | fixed_size_list<int32>[4] | pixel | crop (x0, y0, x1, y1), source pixels, end exclusive |
| `arcsec_per_pixel` | float32 | arcsec / pixel | pixel scale of the network input |
| `mask_flags` | int64 | | Legacy Survey MASKBITS at the stamp centre (FITS with MASKBITS), else 0 |
| carried columns | as stored | | `--carry` catalogue columns; `/` in names becomes `_` |
| `embedding` | fixed_size_list<float32 or float16>[D] | | the embedding (see below) |
| `recon_mse` | float32 | input units^2 | mean squared reconstruction error (with `--decoder`) |

Embeddings (`EMBEDDINGS`), all computed from the encoder in float32 after a bf16 or f32 forward:
`mean` (mean of the bottleneck tokens, (C,)), `authors` (the paper's released layout,
`lvm_jax.models.embedding.authors_embedding`, (C,)), `multiscale` (the token means of every
encoder feature map: patch embedding, the input of each stage and the normed bottleneck,
concatenated, (sum of their channels,)).

Parquet key-value metadata (`METADATA_KEY`, one JSON object, identical in every part file):
`schema_version`, `model` (the model config), `compute_dtype`, `checkpoint` {path, step},
`preprocessing` (a `Preprocessing.to_dict()`), `fast_resize`, `embedding` {kind, dim, dtype,
definition}, `decoder`, `carry`, `data` (the source), and the provenance record of
`lvm_jax.provenance.provenance` (code version, git SHA, packages, host, time).

`rejects.parquet`: `id` string, `source_file` string, `source_index` int64, `reason` string
(a `lvm_jax.data.validate` code: nonfinite, all_zero, constant, constant_band, shape,
band_count, unreadable), `detail` string.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from lvm_jax.export.options import EMBEDDINGS  # noqa: F401  (re-exported)

SCHEMA_VERSION = 1
METADATA_KEY = b"lvm_jax.export"
EMBEDDING_DTYPES = {"float32": pa.float32(), "float16": pa.float16()}
PARTS_DIR = "embeddings"
REJECTS_FILE = "rejects.parquet"
MANIFEST_FILE = "manifest.json"

EMBEDDING_DEFINITIONS = {
    "mean": "mean over the bottleneck tokens (B, N, C) -> (C,)",
    "authors": "bottleneck (C, N) average-pooled over groups of 4 tokens, channel-major, first C",
    "multiscale": "token means of every encoder feature map (patch embedding, each stage input, "
                  "normed bottleneck), concatenated",
}

BASE_FIELDS = (
    pa.field("id", pa.string()),
    pa.field("source_file", pa.string()),
    pa.field("source_index", pa.int64()),
    pa.field("ra", pa.float64(), metadata={"unit": "deg"}),
    pa.field("dec", pa.float64(), metadata={"unit": "deg"}),
    pa.field("box", pa.list_(pa.int32(), 4), metadata={"unit": "pixel"}),
    pa.field("arcsec_per_pixel", pa.float32(), metadata={"unit": "arcsec / pixel"}),
    pa.field("mask_flags", pa.int64()),
)

REJECTS_SCHEMA = pa.schema([
    pa.field("id", pa.string()), pa.field("source_file", pa.string()),
    pa.field("source_index", pa.int64()), pa.field("reason", pa.string()),
    pa.field("detail", pa.string())])

UNITS = {"ra": "deg", "dec": "deg", "box": "pixel", "arcsec_per_pixel": "arcsec / pixel"}


def column_name(carried: str) -> str:
  """The output name of a carried catalogue column: `truth/class_id` -> `truth_class_id`."""
  return carried.replace("/", "_")


def arrow_type(values: np.ndarray) -> pa.DataType:
  """The Arrow type of a carried column from its (N, ...) NumPy values."""
  values = np.asarray(values)
  if values.dtype.kind in "SU":
    scalar = pa.string()
  else:
    scalar = pa.from_numpy_dtype(values.dtype)
  if values.ndim == 1:
    return scalar
  return pa.list_(scalar, int(np.prod(values.shape[1:])))


def embedding_schema(dim: int, dtype: str, carried: Mapping[str, pa.DataType] | None = None,
                     decoder: bool = False, metadata: Mapping[str, Any] | None = None
                     ) -> pa.Schema:
  """The part-file schema: base fields, carried columns (in order), embedding, recon_mse."""
  fields = list(BASE_FIELDS)
  fields += [pa.field(name, t) for name, t in (carried or {}).items()]
  fields.append(pa.field("embedding", pa.list_(EMBEDDING_DTYPES[dtype], int(dim))))
  if decoder:
    fields.append(pa.field("recon_mse", pa.float32()))
  md = {METADATA_KEY: json.dumps(dict(metadata), sort_keys=True).encode()} if metadata else None
  return pa.schema(fields, metadata=md)


def read_metadata(schema: pa.Schema) -> dict[str, Any]:
  """The export metadata dict stored in a part file's schema (empty if absent)."""
  raw = (schema.metadata or {}).get(METADATA_KEY)
  return json.loads(raw) if raw else {}


def fixed_list(values: np.ndarray, value_type: pa.DataType) -> pa.FixedSizeListArray:
  """(N, D) NumPy -> fixed_size_list<value_type>[D]."""
  values = np.asarray(values)
  n = values.shape[0]
  d = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
  flat = pa.array(values.reshape(n * d), type=value_type)
  return pa.FixedSizeListArray.from_arrays(flat, d)


def column_array(values: Sequence[Any] | np.ndarray, t: pa.DataType) -> pa.Array:
  """A NumPy column (N, ...) as an Arrow array of type `t` (strings decoded from bytes)."""
  if pa.types.is_fixed_size_list(t):
    return fixed_list(np.asarray(values).reshape(len(values), -1), t.value_type)
  if pa.types.is_string(t):
    return pa.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], pa.string())
  return pa.array(np.asarray(values), type=t)
