"""Writes a labelled sample as CSV, Parquet, FITS or VOTable, with provenance in its metadata.

The writer is `lvm_jax.export.table_writer` (the one provenance-table writer); this module
keeps its names for the HITL code and notebooks.
"""

from __future__ import annotations

from lvm_jax.export.table_writer import FORMATS, PROVENANCE_KEY, format_of, write_table

__all__ = ["FORMATS", "PROVENANCE_KEY", "format_of", "write_table"]
