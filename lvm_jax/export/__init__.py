"""Embedding export for whole surveys (`lvm-jax export`), and reading exports back.

    from lvm_jax.export import ExportSettings, export_survey, read_embeddings
    summary = export_survey("ckpt/", "survey/", "emb/", ExportSettings(batch=64))
    table = read_embeddings("emb/")      # pyarrow Table; schema in lvm_jax.export.schema
    columns = read_catalogue("emb/")     # NumPy columns; columns["embedding"] is (N, D)

Similarity search over an export is `lvm_jax.export.search`. Names load lazily, so that the CLI's
`from lvm_jax.export import commands` does not import jax.
"""

import importlib

_NAMES = {"ExportSettings": "survey", "export_survey": "survey", "astropy_table": "tables",
          "read_embeddings": "tables", "read_metadata": "tables",
          "read_catalogue": "tables"}


def __getattr__(name):
  if name in _NAMES:
    return getattr(importlib.import_module(f"lvm_jax.export.{_NAMES[name]}"), name)
  raise AttributeError(f"module 'lvm_jax.export' has no attribute {name!r}")


__all__ = sorted(_NAMES)
