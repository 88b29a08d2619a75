"""Encoder-only inference from a checkpoint, sharded over a device mesh.

The batch axis is split over the mesh's `data` axis (all devices by default); the parameters are
restored straight onto a replicated `NamedSharding`. Each process passes its own rows
(`jax.make_array_from_process_local_data`) and gets its own rows back, so the same code runs on
one host or many. The compute dtype (bf16 by default) overrides the checkpoint's model config;
embeddings and `recon_mse` are float32 whatever it is.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from lvm_jax import checkpoint
from lvm_jax.models import embedding as embedding_lib

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: all, ordered by process) with axis `data`."""
  devices = list(jax.devices() if devices is None else devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def features_embedding(encoded: dict[str, Any], kind: str) -> jnp.ndarray:
  """(B, D) float32 embedding of `SUNet.encode` outputs; kinds in `schema.EMBEDDINGS`."""
  if kind == "multiscale":
    return jnp.concatenate([f.astype(jnp.float32).mean(axis=(1, 2)) for f in encoded["features"]],
                           axis=-1)
  return embedding_lib.embed(encoded["bottleneck"], kind)


def model_fields(model_config: dict[str, Any], compute_dtype: str) -> dict[str, Any]:
  """The checkpoint's model config with `dtype` replaced by the export's compute dtype."""
  return dict(model_config, dtype=compute_dtype)


@dataclasses.dataclass
class Encoder:
  """The network of a checkpoint, ready to embed batches on a mesh.

  Use `Encoder.from_checkpoint`; call with this process's (b, S, S, 3) float32 images, where
  b = `local_batch`, to get {"embedding": (b, D) float32[, "recon_mse": (b,) float32]}.
  """

  module: Any
  params: Any
  mesh: jax.sharding.Mesh
  global_batch: int
  embedding: str
  decoder: bool
  step: int
  config: dict[str, Any]
  meta: dict[str, Any]

  @classmethod
  def from_checkpoint(cls, directory, *, global_batch: int, embedding: str = "mean",
                      compute_dtype: str = "bfloat16", decoder: bool = False,
                      devices: Sequence[jax.Device] | None = None, step: int | None = None
                      ) -> Encoder:
    from lvm_jax import models
    mesh = data_mesh(devices)
    n = mesh.devices.size
    if global_batch % n:
      raise ValueError(f"batch {global_batch} is not a multiple of the {n} devices")
    config = checkpoint.read_json(directory, "config", step)
    module = models.build(model_fields(config["model"], compute_dtype))
    replicated = NamedSharding(mesh, PartitionSpec())
    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                            _param_shapes(json.dumps(config["model"], sort_keys=True)))
    restored = checkpoint.restore(directory, step, abstract={"params": abstract})
    return cls(module, restored["params"], mesh, global_batch, embedding, decoder,
               int(restored["step"]), restored["config"], restored["meta"])

  def __post_init__(self):
    data = NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))
    self._data_sharding = data
    out = {"embedding": data, **({"recon_mse": data} if self.decoder else {})}
    self._forward = jax.jit(self._apply, out_shardings=out)

  @property
  def local_batch(self) -> int:
    return self.global_batch // jax.process_count()

  @property
  def image_size(self) -> int:
    return int(self.module.img_size)

  def _apply(self, params, images):
    encoded = self.module.apply({"params": params}, images, method="encode")
    out = {"embedding": features_embedding(encoded, self.embedding)}
    if self.decoder:
      recon = self.module.apply({"params": params}, encoded["features"], method="decode")
      out["recon_mse"] = jnp.mean(jnp.square(recon - images), axis=(1, 2, 3))
    return out

  def embedding_dim(self) -> int:
    shape = (self.global_batch, self.image_size, self.image_size, self.module.in_chans)
    images = jax.ShapeDtypeStruct(shape, jnp.float32)
    return int(jax.eval_shape(self._apply, self.params, images)["embedding"].shape[-1])

  def submit(self, local_images: np.ndarray) -> dict[str, jax.Array]:
    """Starts the forward pass on this process's (local_batch, S, S, 3) images (asynchronous)."""
    local_images = np.asarray(local_images, np.float32)
    if local_images.shape[0] != self.local_batch:
      raise ValueError(f"expected {self.local_batch} local images, got {local_images.shape[0]}")
    images = jax.make_array_from_process_local_data(
        self._data_sharding, local_images, (self.global_batch, *local_images.shape[1:]))
    return self._forward(self.params, images)

  def __call__(self, local_images: np.ndarray) -> dict[str, np.ndarray]:
    """{"embedding": (b, D)[, "recon_mse": (b,)]} float32 NumPy for this process's b images."""
    return fetch(self.submit(local_images))


def fetch(outputs: dict[str, jax.Array]) -> dict[str, np.ndarray]:
  """This process's rows of each output of `Encoder.submit`."""
  return {k: local_rows(v) for k, v in outputs.items()}


@functools.lru_cache(maxsize=8)
def _param_shapes(model_config_json: str):
  """Parameter shapes of a model config (tracing the init takes seconds; done once per config)."""
  from lvm_jax import models
  return models.abstract_params(models.build(json.loads(model_config_json)))


def local_rows(array: jax.Array) -> np.ndarray:
  """This process's rows of a batch-sharded global array, in order, as NumPy."""
  if jax.process_count() == 1:
    return np.asarray(array)
  shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
  seen, rows = set(), []
  for s in shards:  # replicated shards (several devices holding the same rows) are kept once
    key = s.index[0].start
    if key not in seen:
      seen.add(key)
      rows.append(np.asarray(s.data))
  return np.concatenate(rows)
