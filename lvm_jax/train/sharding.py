"""The device mesh and the partitioning of parameters, optimizer state and batches.

Everything comes from the config (`config.mesh`, `config.sharding`), MaxText style:

* `mesh.shape` / `mesh.axes`: e.g. [-1, 1] over ("data", "fsdp"); one -1 takes the remaining
  devices. Built with `jax.make_mesh`, so the data axis is ordered by process.
* `sharding.rules`: a list of (regex, spec) tried in order on a leaf's path
  (`jax.tree_util.keystr`, e.g. "['layers_0']['blocks_1']['attn']['qkv']['kernel']"); spec is
  "replicated", "fsdp" (the default policy below) or a tuple of mesh-axis names / None per dim.
* default policy ("fsdp"): a leaf of 2+ dims and at least `sharding.fsdp_min_size` elements
  (vectors, i.e. norms and biases, never) is split along
  the `fsdp` axis on its largest dimension divisible by the axis size (ties: the last); smaller
  or indivisible leaves are replicated.
* batches: the leading axis split over `sharding.batch_axes` (default ("data", "fsdp")).

The same path rules apply to the optimizer state, whose moment trees mirror the parameters.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

FSDP = "fsdp"


def make_mesh(shape: Sequence[int], axes: Sequence[str], devices=None) -> Mesh:
  """`jax.make_mesh` with one -1 entry meaning "the remaining devices"."""
  devices = jax.devices() if devices is None else devices
  n = len(devices)
  shape = [int(s) for s in shape]
  if shape.count(-1) > 1:
    raise ValueError(f"at most one -1 in mesh shape {shape}")
  known = int(np.prod([s for s in shape if s != -1]))
  if -1 in shape:
    if n % known:
      raise ValueError(f"{n} devices do not divide into mesh {shape}")
    shape[shape.index(-1)] = n // known
  if int(np.prod(shape)) != n:
    raise ValueError(f"mesh {shape} needs {int(np.prod(shape))} devices, have {n}")
  auto = (jax.sharding.AxisType.Auto,) * len(axes)
  return jax.make_mesh(tuple(shape), tuple(axes), axis_types=auto, devices=devices)


def _fsdp_spec(shape: tuple[int, ...], mesh: Mesh, min_size: int) -> P:
  size = mesh.shape.get(FSDP, 1)
  if size <= 1 or len(shape) < 2 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  best = None
  for d, n in enumerate(shape):
    if n % size == 0 and (best is None or n >= shape[best]):
      best = d
  if best is None:
    return P()
  spec = [None] * len(shape)
  spec[best] = FSDP
  return P(*spec)


def leaf_spec(path: str, shape: tuple[int, ...], mesh: Mesh, rules: Sequence[Any],
              min_size: int) -> P:
  """The PartitionSpec of one leaf by the first matching rule, else the fsdp policy."""
  if len(shape) == 0:
    return P()
  for pattern, spec in rules or ():
    if re.search(pattern, path):
      if spec == "replicated":
        return P()
      if spec == "fsdp":
        return _fsdp_spec(shape, mesh, min_size)
      spec = tuple(spec)
      if len(spec) != len(shape):
        raise ValueError(f"rule {pattern!r} gives {spec} for {path} of shape {shape}")
      return P(*spec)
  return _fsdp_spec(shape, mesh, min_size)


def tree_shardings(tree, mesh: Mesh, sharding_config):
  """NamedShardings for every leaf of `tree` (arrays or ShapeDtypeStructs)."""
  rules = [tuple(r) for r in sharding_config.rules]
  min_size = int(sharding_config.fsdp_min_size)

  def one(path, leaf):
    return NamedSharding(mesh, leaf_spec(jax.tree_util.keystr(path), tuple(np.shape(leaf)),
                                         mesh, rules, min_size))
  return jax.tree_util.tree_map_with_path(one, tree)


def batch_axes(mesh: Mesh, sharding_config) -> tuple[str, ...]:
  """The mesh axes the batch dimension is split over (those present in the mesh)."""
  return tuple(a for a in sharding_config.batch_axes if a in mesh.axis_names)


def batch_sharding(mesh: Mesh, sharding_config) -> NamedSharding:
  return NamedSharding(mesh, P(batch_axes(mesh, sharding_config)))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def describe(shardings) -> dict[str, str]:
  """{leaf path: spec string}, e.g. for the golden files."""
  flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
  return {jax.tree_util.keystr(path): str(tuple(s.spec)) for path, s in flat}
