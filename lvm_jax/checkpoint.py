"""The lvm-jax checkpoint layout (Orbax), shared by conversion, training, export and the app.

A checkpoint directory holds numbered steps, each with named items:

| item | content | written by |
| --- | --- | --- |
| `params` | the model parameters (float32 pytree, mirrors `lvm_jax.models` names) | always |
| `opt_state` | optimizer state (optax pytree) | training |
| `ema_params` | exponential moving average of the parameters | training, when enabled |
| `model_state` | the task's mutable collections (BatchNorm statistics) | training, when the task has any |
| `data_iter` | the data iterator position (JSON), exact batches consumed | training |
| `config` | the model config (`model`) and, for training, the full job config (JSON) | always |
| `meta` | provenance: code version, git SHA, packages, preprocessing, normalisation, seeds, source | always |

`restore` puts arrays onto the shardings of a given abstract tree (`jax.ShapeDtypeStruct`s with
`sharding`), so a 100M model can be restored straight into a sharded layout.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping

import jax
import orbax.checkpoint as ocp

from lvm_jax import provenance

ARRAY_ITEMS = ("params", "opt_state", "ema_params", "model_state")
JSON_ITEMS = ("data_iter", "config", "meta")


def manager(directory: str | pathlib.Path, max_to_keep: int | None = None,
            async_save: bool = False) -> ocp.CheckpointManager:
  """A CheckpointManager for the lvm-jax layout under `directory` (created if absent)."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=async_save)
  return ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options,
                               item_names=ARRAY_ITEMS + JSON_ITEMS)


def save(directory: str | pathlib.Path, step: int, *, params: Any, config: Mapping[str, Any],
         meta: Mapping[str, Any] | None = None, opt_state: Any = None, ema_params: Any = None,
         model_state: Any = None, data_iter: Mapping[str, Any] | None = None, mngr: ocp.CheckpointManager | None = None,
         ) -> None:
  """Write one step. `config` is JSON-like with at least `model`; `meta` gets provenance added.

  With a caller-owned `mngr` (training), the save may be asynchronous; otherwise it is
  finished when this returns.
  """
  if "model" not in config:
    raise ValueError("checkpoint config must hold the model config under 'model'")
  meta = provenance.provenance(**dict(meta or {}))
  items = {"params": ocp.args.StandardSave(params), "config": ocp.args.JsonSave(dict(config)),
           "meta": ocp.args.JsonSave(meta)}
  if opt_state is not None:
    items["opt_state"] = ocp.args.StandardSave(opt_state)
  if ema_params is not None:
    items["ema_params"] = ocp.args.StandardSave(ema_params)
  if model_state:  # mutable collections, e.g. BatchNorm statistics
    items["model_state"] = ocp.args.StandardSave(model_state)
  if data_iter is not None:
    items["data_iter"] = ocp.args.JsonSave(dict(data_iter))
  own = mngr is None
  mngr = mngr or manager(directory)
  mngr.save(step, args=ocp.args.Composite(**items))
  if own:
    mngr.wait_until_finished()
    mngr.close()


def latest_step(directory: str | pathlib.Path) -> int | None:
  """The newest step in `directory`, or None if it holds no checkpoint."""
  path = pathlib.Path(directory)
  if not path.is_dir():
    return None
  with manager(path) as mngr:
    return mngr.latest_step()


def read_json(directory: str | pathlib.Path, item: str = "config", step: int | None = None):
  """Read one JSON item (`config`, `meta` or `data_iter`) without touching the arrays."""
  if item not in JSON_ITEMS:
    raise ValueError(f"{item!r} is not a JSON item; JSON items are {JSON_ITEMS}")
  with manager(directory) as mngr:
    step = mngr.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {directory}")
    return mngr.restore(step, args=ocp.args.Composite(**{item: ocp.args.JsonRestore()}))[item]


def restore(directory: str | pathlib.Path, step: int | None = None, *,
            abstract: Mapping[str, Any] | None = None, items: tuple[str, ...] = ("params",),
            mngr: ocp.CheckpointManager | None = None) -> dict[str, Any]:
  """Restore `items` of `step` (default the latest) plus `config` and `meta`.

  `abstract` maps array items to pytrees of `jax.ShapeDtypeStruct` (with `.sharding`) or arrays;
  arrays are restored onto those shardings. Without it, arrays come back on the default device.
  Returns a dict with the restored items and `step`.
  """
  own = mngr is None
  mngr = mngr or manager(directory)
  try:
    step = mngr.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {directory}")
    args = {"config": ocp.args.JsonRestore(), "meta": ocp.args.JsonRestore()}
    for item in items:
      if item in JSON_ITEMS:
        args[item] = ocp.args.JsonRestore()
      elif abstract is not None and item in abstract:
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract[item])
        args[item] = ocp.args.StandardRestore(target)
      else:
        args[item] = ocp.args.StandardRestore()
    restored = mngr.restore(step, args=ocp.args.Composite(**args))
    out = {name: restored[name] for name in args}
    out["step"] = step
    return out
  finally:
    if own:
      mngr.close()
