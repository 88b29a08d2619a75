"""The layout of an ingested survey folder and its manifest.

```
OUT/
  images_npix{S}_{start:09d}_{stop:09d}.h5   shards in the ssl-legacysurvey layout, catalogue rows
                                            [start, stop) (accepted rows only; none if all failed)
  manifest.json     provenance, options, image kind, stamp size, counts, shard list
  rows.parquet      per stored galaxy: row (CSV data row, 0-based), id, file, original_file
                    (absolute path of the input image), shard, shard_row
  rejects.parquet   row, id, file, reason, detail: every quarantined row, every CSV row whose
                    file is missing, every image file without a CSV row (row -1)
  report.json       counts per reason, missing ids, unlisted files, counts per split and class
  splits/           {train,val,test[,pretrain]}.csv (row, id, label) and splits.json
  .ingest/          per-shard completion records (resume state)
```

Each shard holds the ssl datasets (`images` (n, 3, S, S) float32, `ra`, `dec`, `release`,
`brickid`, `objid` = CSV row, ...), `id` ((n,) UTF-8 bytes: the catalogue's id, which readers
use as the record id) and a group `catalogue/` with every CSV column ((n,) numbers, or
UTF-8 bytes for text).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

MANIFEST = "manifest.json"
ROWS = "rows.parquet"
REJECTS = "rejects.parquet"
REPORT = "report.json"
SPLITS = "splits"
STATE = ".ingest"
CATALOGUE_GROUP = "catalogue"
FORMAT = "lvm-jax-ingest/1"


def manifest_path(folder: str | os.PathLike) -> pathlib.Path:
  return pathlib.Path(folder) / MANIFEST


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
  """The manifest of an ingested folder, or None when `folder` is not one."""
  path = manifest_path(folder)
  if not path.is_file():
    return None
  with path.open() as f:
    manifest = json.load(f)
  return manifest if manifest.get("format") == FORMAT else None


def survey_image_kind(path: str | os.PathLike) -> str | None:
  """'flux' or 'display_rgb' for an ingested folder (or one of its shards), else None."""
  path = pathlib.Path(path)
  manifest = read_manifest(path if path.is_dir() else path.parent)
  return None if manifest is None else manifest["image_kind"]


def write_json(path: pathlib.Path, record: Any) -> None:
  """Writes JSON atomically (a temporary file renamed over `path`)."""
  tmp = path.with_name(path.name + ".tmp")
  with tmp.open("w") as f:
    json.dump(record, f, indent=2, sort_keys=True, default=str)
  os.replace(tmp, path)
