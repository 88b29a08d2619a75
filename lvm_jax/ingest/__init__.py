"""`lvm-jax ingest`: a folder of labelled cutouts (FITS flux or JPEG/PNG colour composites) plus a
CSV catalogue, written as the project's survey format (ssl-layout HDF5 shards, see `layout`).

Modules: `catalogue` (read and check the CSV, find unmatched files), `readers` (one file -> a
checked (3, S, S) image or a quarantine reason), `writer` (one shard file), `splits` (seeded,
stratified train/val/test/pretrain lists), `layout` (names and the survey manifest), `builder`
(the streaming, resumable, parallel driver), `report` (rows/rejects tables, splits, report),
`originals` (the original image files of an ingested set, for display), `commands`
(`lvm-jax ingest`).
"""

from __future__ import annotations
