"""The end of an ingest: rows and rejects tables, splits, `report.json`, the completed manifest."""

from __future__ import annotations

import collections
import json
import pathlib
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_jax.ingest import catalogue as catalogue_lib
from lvm_jax.ingest import layout, readers, splits

REJECT_COLUMNS = ("row", "id", "file", "reason", "detail")


def _shard_records(out: pathlib.Path) -> list[dict[str, Any]]:
  paths = sorted((out / layout.STATE).glob("shard_*.json"))
  records = []
  for p in paths:
    with p.open() as f:
      records.append(json.load(f))
  return records


def _write_table(path: pathlib.Path, columns: dict[str, list], types: dict[str, pa.DataType]):
  table = pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()})
  tmp = path.with_name(path.name + ".tmp")
  pq.write_table(table, tmp)
  tmp.replace(path)


def finish(out: pathlib.Path, folder: pathlib.Path, cat, options, manifest: dict,
           started: float) -> dict[str, Any]:
  """Writes rows.parquet, rejects.parquet, splits/ and report.json; returns the report."""
  records = _shard_records(out)
  rows, shard_of, shard_row, rejects = [], [], [], []
  for record in records:
    rows += record["rows"]
    shard_of += [record["file"]] * len(record["rows"])
    shard_row += list(range(len(record["rows"])))
    rejects += record["rejects"]
  unlisted = catalogue_lib.unlisted_files(folder, cat.files.tolist())
  rejects += [{"row": -1, "id": "", "file": f, "reason": readers.NO_CATALOGUE_ROW,
               "detail": f"{folder / f}: no row of {cat.path.name} names this file"}
              for f in unlisted]
  rows_arr = np.asarray(rows, np.int64)
  ids = cat.ids[rows_arr] if rows else np.array([], str)
  text = pa.string()
  _write_table(out / layout.ROWS, {
      "row": rows, "id": ids.tolist(), "file": cat.files[rows_arr].tolist() if rows else [],
      "original_file": [str(folder / f) for f in cat.files[rows_arr]] if rows else [],
      "shard": shard_of, "shard_row": shard_row},
      {"row": pa.int64(), "id": text, "file": text, "original_file": text, "shard": text,
       "shard_row": pa.int64()})
  _write_table(out / layout.REJECTS, {c: [r[c] for r in rejects] for c in REJECT_COLUMNS},
               {"row": pa.int64(), "id": text, "file": text, "reason": text, "detail": text})

  fractions = dict(options.fractions)
  labels = (cat.columns[options.label_column][rows_arr] if options.label_column and rows
            else np.full(len(rows), "", dtype=object))
  split_counts = (splits.write_splits(out / layout.SPLITS, rows_arr, ids, labels, fractions,
                                      options.seed, options.label_column, cat.files[rows_arr])
                  if fractions and rows else {})
  reasons = collections.Counter(r["reason"] for r in rejects)
  summary = {
      "catalogue_rows": len(cat), "stored": len(rows),
      "quarantined": sum(n for r, n in reasons.items() if r != readers.NO_CATALOGUE_ROW),
      "reasons": dict(sorted(reasons.items())),
      "missing_ids": [r["id"] for r in rejects if r["reason"] == readers.MISSING_FILE],
      "unlisted_files": unlisted,
      "classes": (dict(sorted(collections.Counter(np.asarray(labels).astype(str).tolist()).items()))
                  if options.label_column else {}),
      "splits": split_counts, "image_kind": manifest["image_kind"], "stamp": manifest["stamp"],
      "shards": [r["file"] for r in records if r["file"]],
      "wall_s": round(time.time() - started, 2)}
  layout.write_json(out / layout.REPORT, summary)
  manifest = {**manifest, "complete": True,
              "counts": {k: summary[k] for k in ("catalogue_rows", "stored", "quarantined")},
              "shards": summary["shards"]}
  layout.write_json(layout.manifest_path(out), manifest)
  return summary


def describe(summary: dict[str, Any], out: pathlib.Path) -> str:
  """A few lines for stdout."""
  lines = [f"ingested {summary['stored']} of {summary['catalogue_rows']} catalogue rows "
           f"({summary['image_kind']}, {summary['stamp']} px) into {out} in "
           f"{len(summary['shards'])} shards, {summary['wall_s']:.1f} s"]
  quarantined = {k: v for k, v in summary["reasons"].items() if k != readers.NO_CATALOGUE_ROW}
  if quarantined:
    lines.append("quarantined: " + ", ".join(f"{k} {v}" for k, v in quarantined.items())
                 + f" (rows in {out / layout.REJECTS})")
  for what, items in (("CSV ids without an image file", summary["missing_ids"]),
                      ("image files without a CSV row", summary["unlisted_files"])):
    if items:
      shown = ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")
      lines.append(f"{len(items)} {what}: {shown}")
  for name, counts in summary["splits"].items():
    per_class = ", ".join(f"{k} {v}" for k, v in counts.items()) if set(counts) - {""} else ""
    lines.append(f"split {name}: {sum(counts.values())}" + (f" ({per_class})" if per_class else ""))
  return "\n".join(lines)
