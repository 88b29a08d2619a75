"""`ExportSettings`: what `lvm-jax export` does, with the packaged `export` config's defaults."""

from __future__ import annotations

import dataclasses

from lvm_jax.configs import export as export_config
from lvm_jax.errors import ConfigError
from lvm_jax.export import schema

# The one set of defaults: the packaged `export` config (`lvm-jax export` without --config).
_DEFAULTS = export_config.get_config()


@dataclasses.dataclass(frozen=True)
class ExportSettings:
  """What `lvm-jax export` does; defaults from the packaged `export` config (`lvm_jax/configs`).

  batch: global batch (images per forward pass, a multiple of the device count).
  chunk_size: source records per part file (the unit of resume).
  embedding: 'mean', 'authors' or 'multiscale' (`schema.EMBEDDINGS`).
  dtype: stored embedding dtype, 'float32' or 'float16'.
  compute_dtype: network compute dtype, 'bfloat16' or 'float32' (overrides the checkpoint's).
  decoder: also run the decoder and store `recon_mse`.
  carry: catalogue columns copied to the output.
  formats: extra copies written when complete: 'fits', 'votable'.
  workers: host threads reading and preprocessing images.
  fast_resize: `pipeline.fast_resize` (True) or skimage (False); None: as the checkpoint's meta
    records (`fast_resize`, default False: the authors' exact resize).
  allow_display_rgb: embed display-RGB images (Galaxy10) with a flux model anyway.
  allow_nonfloat: embed ssl HDF5 images stored as integers or float16 as if they were flux.
  fallback: with no explicit step, use the newest checkpoint step that passes its digests.
  overwrite: start again even if OUT holds an export with other settings.
  """

  batch: int = _DEFAULTS.batch
  chunk_size: int = _DEFAULTS.chunk_size
  embedding: str = _DEFAULTS.embedding
  dtype: str = _DEFAULTS.dtype
  compute_dtype: str = _DEFAULTS.compute_dtype
  decoder: bool = _DEFAULTS.decoder
  carry: tuple[str, ...] = tuple(_DEFAULTS.carry)
  formats: tuple[str, ...] = tuple(_DEFAULTS.formats)
  workers: int = _DEFAULTS.workers
  fast_resize: bool | None = _DEFAULTS.fast_resize
  allow_display_rgb: bool = _DEFAULTS.allow_display_rgb
  allow_nonfloat: bool = False
  fallback: bool = True
  overwrite: bool = False

  @classmethod
  def from_config(cls, spec: str = "export", **fields) -> "ExportSettings":
    """The settings of a config (`export`, `export:cpu` or a file path.py[:arg]), then `fields`."""
    from lvm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
    values = config_lib.load_config(spec).to_dict()
    values.update(fields)
    for key in ("carry", "formats"):
      values[key] = tuple(values.get(key) or ())
    return cls(**values)

  def __post_init__(self):
    if self.embedding not in schema.EMBEDDINGS:
      raise ConfigError(f"embedding must be one of {schema.EMBEDDINGS}, got {self.embedding!r}")
    if self.dtype not in schema.EMBEDDING_DTYPES:
      raise ConfigError(f"dtype must be one of {sorted(schema.EMBEDDING_DTYPES)}")
    unknown = set(self.formats) - {"fits", "votable"}
    if unknown:
      raise ConfigError(f"unknown formats {sorted(unknown)}; known: fits, votable")
    if self.chunk_size <= 0 or self.batch <= 0 or self.workers < 0:
      raise ConfigError(f"batch ({self.batch}) and chunk_size ({self.chunk_size}) must be "
                        f">= 1, workers ({self.workers}) >= 0")
