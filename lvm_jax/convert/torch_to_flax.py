"""Map a PyTorch SUNet / LVM state dict onto lvm-jax parameters.

Names map mechanically: a dotted PyTorch name is split at the dots and every numeric index is
joined to the name before it (`layers.0.blocks.1.attn.qkv.weight` ->
`layers_0/blocks_1/attn/qkv/kernel`). Linear weights (out, in) become kernels (in, out); conv
weights (O, I, kh, kw) become (kh, kw, I, O); LayerNorm `weight` becomes `scale`; PReLU
`weight` becomes `alpha`.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
from flax import traverse_util

from lvm_jax import models
from lvm_jax.convert import readers
from lvm_jax.models import windows

DERIVED_BUFFERS = ("relative_position_index", "attn_mask")
UNUSED_PUBLISHED = ("output_class.", "output_re.")

log = logging.getLogger(__name__)


class ConversionError(ValueError):
  """A state dict that does not fit the config: lists every missing, unexpected, mis-shaped key."""


def module_path(torch_name: str) -> tuple[str, ...]:
  """`layers.0.blocks.1.attn.qkv` -> ('layers_0', 'blocks_1', 'attn', 'qkv')."""
  out: list[str] = []
  for part in torch_name.split("."):
    if part.isdigit() and out:
      out[-1] = f"{out[-1]}_{part}"
    else:
      out.append(part)
  return tuple(out)


def _target(name: str, value: np.ndarray, shapes: Mapping[tuple[str, ...], tuple[int, ...]]):
  """(flax path, value in flax layout) for one PyTorch tensor, or (None, None) if no slot."""
  *mod, leaf = name.split(".")
  path = module_path(".".join(mod))
  if leaf in ("bias", "relative_position_bias_table"):
    return path + (leaf,), value
  if leaf == "weight":
    if path + ("kernel",) in shapes:
      if value.ndim == 4:
        return path + ("kernel",), value.transpose(2, 3, 1, 0)
      if value.ndim == 2:
        return path + ("kernel",), value.T
    for flax_leaf in ("scale", "alpha"):
      if path + (flax_leaf,) in shapes:
        return path + (flax_leaf,), value
    if path in shapes:  # A bare parameter (the unused top-level `prelu`).
      return path, value
  return None, None


def _check_derived(name: str, value: np.ndarray) -> str | None:
  """A relative_position_index buffer must be a valid window index; returns the problem if not.

  (Its window size is also implied by the bias table's shape, which is checked separately.)
  """
  if name.endswith("relative_position_index"):
    w = int(round(np.sqrt(value.shape[0])))
    if w * w != value.shape[0] or not np.array_equal(value, windows.relative_position_index(w)):
      return f"{name}: not the relative position index of a {w}x{w} window"
  return None


def params_from_torch(state_dict: Mapping[str, np.ndarray], config) -> dict:
  """lvm-jax parameters from a PyTorch state dict (name -> array) for a model config.

  Accepts the prefixes `module.` (DataParallel) and `swin_unet.` (the published wrapper), skips
  the derived buffers (`relative_position_index`, checked against the config; `attn_mask`),
  and skips with a warning the published checkpoint's unused `output_class.*`/`output_re.*`.
  Raises ConversionError listing every missing key, unexpected key and shape mismatch.
  Returns a nested dict of float32 NumPy arrays (`{"params": ...}` is what `apply` takes).
  """
  model = models.build(config)
  abstract = models.abstract_params(model)
  shapes = {k: v.shape for k, v in traverse_util.flatten_dict(abstract).items()}
  state_dict = readers.strip_prefixes(state_dict)
  flat: dict[tuple[str, ...], np.ndarray] = {}
  unexpected, mismatched, skipped_unused = [], [], []
  for name, value in state_dict.items():
    value = np.asarray(value)
    if name.split(".")[-1] in DERIVED_BUFFERS:
      problem = _check_derived(name, value)
      if problem:
        mismatched.append(problem)
      continue
    if name.startswith(UNUSED_PUBLISHED):
      skipped_unused.append(name)
      continue
    path, converted = _target(name, value, shapes)
    if path is None or path not in shapes:
      unexpected.append(f"{name} {list(value.shape)}")
      continue
    if tuple(converted.shape) != tuple(shapes[path]):
      mismatched.append(f"{name}: checkpoint {list(value.shape)} -> {list(converted.shape)}, "
                        f"model expects {list(shapes[path])} at {'/'.join(path)}")
      continue
    flat[path] = np.ascontiguousarray(converted, dtype=np.float32)
  missing = ["/".join(p) for p in shapes if p not in flat]
  if missing or unexpected or mismatched:
    lines = [f"state dict does not match the model config ({len(missing)} missing, "
             f"{len(unexpected)} unexpected, {len(mismatched)} mismatched):"]
    lines += [f"  missing: {m}" for m in missing]
    lines += [f"  unexpected: {u}" for u in unexpected]
    lines += [f"  mismatched: {m}" for m in mismatched]
    raise ConversionError("\n".join(lines))
  if skipped_unused:
    log.warning("ignored %d tensors the published LVM's forward never uses (%s, ...)",
                len(skipped_unused), skipped_unused[0])
  return traverse_util.unflatten_dict(flat)


def params_to_torch(params) -> dict[str, np.ndarray]:
  """The inverse mapping (lvm-jax parameters -> PyTorch names and layouts), without buffers."""
  out = {}
  for path, value in traverse_util.flatten_dict(params).items():
    value = np.asarray(value)
    *mod, leaf = path
    if leaf == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
      leaf = "weight"
    elif leaf in ("scale", "alpha"):
      leaf = "weight"
    elif leaf == "prelu":
      mod, leaf = ["prelu"], "weight"
    parts = []
    for p in mod:
      head, _, idx = p.rpartition("_")
      parts.append(f"{head}.{idx}" if idx.isdigit() and head else p)
    out[".".join(parts + [leaf])] = value
  return out
