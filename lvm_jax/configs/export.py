"""Embedding export of a whole survey (`lvm-jax export`).

    lvm-jax export --checkpoint ckpt/ --data survey/ --out emb/ --config export
    lvm-jax export ... --config export:cpu    # float32 compute, small batches

Variants (`arg`): '' (GPU/TPU: bf16 compute, large batches) or 'cpu' (float32, batch 16).
Every field is a `lvm_jax.export.survey.ExportSettings` field; command-line flags override them.
"""

from __future__ import annotations

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.batch = 256            # global batch, a multiple of the device count
  config.chunk_size = 16384     # source records per part file (the unit of resume)
  config.embedding = "mean"     # mean | authors | multiscale
  config.dtype = "float32"      # stored embedding dtype: float32 | float16
  config.compute_dtype = "bfloat16"
  config.decoder = False        # also store recon_mse
  config.carry = ()             # catalogue columns to copy, e.g. ("z_phot_median", "flux")
  config.formats = ()           # extra copies: ("fits", "votable")
  config.workers = 8            # host threads reading + preprocessing
  config.fast_resize = None     # None: as the checkpoint's meta says (default skimage)
  config.allow_display_rgb = False
  if arg == "cpu":
    config.batch = 16
    config.chunk_size = 1024
    config.compute_dtype = "float32"
    config.workers = 2
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; known: '', 'cpu'")
  return config
