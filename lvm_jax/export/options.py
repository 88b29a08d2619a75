"""The choices of `lvm-jax export` (embedding kinds, stored dtypes), importable without pyarrow."""

from __future__ import annotations

EMBEDDINGS = ("mean", "authors", "multiscale")
EMBEDDING_DTYPE_NAMES = ("float16", "float32")
