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
| `log_state` | the metrics logged since the last log line (JSON), so a resumed log matches | training |

Integrity: once a step is finalised, `lvm_digests.json` in its folder records the SHA-256 and
size of every file of every item (`seal`). `restore` checks the files of the items it reads
against it first, and `verify` (`lvm-jax checkpoint verify DIR`) checks whole steps without
building a model. A changed, truncated or missing file is a `CheckpointError` naming the
checkpoint, the step, the item and what to do. A step without digests (written before digests
existed, or by a run killed before its save was sealed) still loads, with a warning.
With `step=None`, `restore` falls back to the newest step that passes (`fallback=True`).

`restore` puts arrays onto the shardings of a given abstract tree (`jax.ShapeDtypeStruct`s with
`sharding`), so a 100M model can be restored straight into a sharded layout.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
from typing import Any, Mapping

import jax
import orbax.checkpoint as ocp

from lvm_jax import provenance
from lvm_jax.errors import CheckpointError, NoCheckpointError

log = logging.getLogger(__name__)

ARRAY_ITEMS = ("params", "opt_state", "ema_params", "model_state")
JSON_ITEMS = ("data_iter", "config", "meta", "log_state")
OPTIONAL_ITEMS = ("log_state",)  # absent from older training checkpoints: restored as None
DIGEST_FILE = "lvm_digests.json"
BROKEN_SUFFIX = ".broken"  # `<dir>.broken/<step>`: steps set aside by a training fallback
_ADVICE = ("restore an earlier step (`--step`, or let the fallback pick the newest intact one; "
           "`checkpoint.keep` > 1 keeps earlier steps), or re-copy the checkpoint")


class Manager(ocp.CheckpointManager):
  """An Orbax CheckpointManager that seals (digests) each step once its save has finished."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.unsealed: list[int] = []

  def wait_until_finished(self):
    try:
      super().wait_until_finished()
    except Exception as e:  # an asynchronous save that failed (e.g. a full disk)
      raise CheckpointError(f"saving checkpoint {self.directory} step {self.unsealed} failed: "
                            f"{type(e).__name__}: {str(e)[:300]}; check the free space and "
                            f"permissions of {self.directory}",
                            directory=str(self.directory)) from e
    while self.unsealed:
      step = self.unsealed.pop(0)
      if step_dir(self.directory, step).is_dir():  # not already removed by max_to_keep
        seal(self.directory, step)


def manager(directory: str | pathlib.Path, max_to_keep: int | None = None,
            async_save: bool = False) -> Manager:
  """A CheckpointManager for the lvm-jax layout under `directory` (created if absent)."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=async_save)
  return Manager(pathlib.Path(directory).absolute(), options=options,
                 item_names=ARRAY_ITEMS + JSON_ITEMS)


def step_dir(directory: str | pathlib.Path, step: int) -> pathlib.Path:
  return pathlib.Path(directory) / str(int(step))


def steps(directory: str | pathlib.Path) -> list[int]:
  """The finalised steps in `directory`, oldest first (no Orbax manager needed)."""
  path = pathlib.Path(directory)
  if not path.is_dir():
    return []
  return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != DIGEST_FILE)


def seal(directory: str | pathlib.Path, step: int) -> pathlib.Path:
  """Writes `lvm_digests.json` (SHA-256 and size of every file) into a finalised step."""
  folder = step_dir(directory, step)
  files = {p.relative_to(folder).as_posix(): {"sha256": provenance.sha256_file(p), "bytes": p.stat().st_size}
           for p in _files(folder)}
  record = {"format": 1, "algorithm": "sha256", "step": int(step), "files": files}
  path = folder / DIGEST_FILE
  tmp = folder / f".{DIGEST_FILE}.tmp-{os.getpid()}"
  tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
  os.replace(tmp, path)
  return path


def _item_of(relpath: str) -> str:
  head = relpath.split("/", 1)
  return head[0] if len(head) == 2 else "(step files)"


def check_step(directory: str | pathlib.Path, step: int,
               items: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
  """Problems of one step as (item, what) pairs; [] when every file matches its digest.

  `items`: only these items (and the step's own files); None: everything. A step without
  digests gives [("(digests)", "no digests")]; a folder that is not a step, ("(step)", ...).
  """
  folder = step_dir(directory, step)
  if not folder.is_dir():
    return [("(step)", f"step folder {folder} is missing")]
  path = folder / DIGEST_FILE
  if not path.exists():
    return [("(digests)", "no digests (written before checksums, or its save never finished)")]
  try:
    files = json.loads(path.read_text())["files"]
  except (ValueError, KeyError, TypeError) as e:  # damaged: not the same as absent
    return [(DIGEST_FILE, f"{DIGEST_FILE} is unreadable ({type(e).__name__}: {e})")]
  if not isinstance(files, dict) or not all(
      isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
      for v in files.values()):
    return [(DIGEST_FILE, f"{DIGEST_FILE} is malformed")]
  problems = []
  for rel, want in sorted(files.items()):
    item = _item_of(rel)
    if items is not None and item not in items and item != "(step files)":
      continue
    p = folder / rel
    if not p.is_file():
      problems.append((item, f"file {rel} is missing"))
    elif p.stat().st_size != want["bytes"]:
      problems.append((item, f"file {rel} has {p.stat().st_size} bytes, {want['bytes']} saved "
                             f"(truncated or extended)"))
    elif provenance.sha256_file(p) != want["sha256"]:
      problems.append((item, f"file {rel} fails its SHA-256 digest (changed since saved)"))
  listed = {_item_of(rel) for rel in files}
  for wanted in items or ():
    if wanted not in listed and wanted not in OPTIONAL_ITEMS and (folder / wanted).exists():
      problems.append((wanted, "item not covered by the digests"))
  return problems


def verify(directory: str | pathlib.Path) -> dict[int, list[tuple[str, str]]]:
  """{step: problems} for every step of `directory` (see `check_step`); no model is built."""
  found = steps(directory)
  if not found:
    raise NoCheckpointError(f"no checkpoint steps in {directory}")
  return {s: check_step(directory, s) for s in found}


def _integrity_error(directory, step, problems) -> CheckpointError:
  item, what = problems[0]
  more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
  return CheckpointError(f"checkpoint {directory} step {step}, item {item!r}: {what}{more}; "
                         f"{_ADVICE}", directory=str(directory), step=step, item=item)


def _check_integrity(directory, step: int, items: tuple[str, ...]) -> None:
  """Raises CheckpointError for a changed, truncated or missing item; warns without digests."""
  folder = step_dir(directory, step)
  for item in items:
    if item not in OPTIONAL_ITEMS and not (folder / item).exists():
      raise CheckpointError(f"checkpoint {directory} step {step}: item {item!r} is missing; "
                            f"{_ADVICE}", directory=str(directory), step=step, item=item)
  problems = check_step(directory, step, items)
  if problems and problems[0][0] == "(digests)":
    log.warning("checkpoint %s step %d has %s: loading it unchecked", directory, step,
                problems[0][1])
    return
  if problems:
    raise _integrity_error(directory, step, problems)


def set_aside(directory: str | pathlib.Path, step: int) -> pathlib.Path:
  """Moves a broken step to `<directory>.broken/<step>` (nothing is deleted); returns the path."""
  directory = pathlib.Path(directory)
  target = directory.with_name(directory.name + BROKEN_SUFFIX) / str(int(step))
  target.parent.mkdir(parents=True, exist_ok=True)
  if target.exists():
    shutil.rmtree(target)
  shutil.move(str(step_dir(directory, step)), str(target))
  return target


def save(directory: str | pathlib.Path, step: int, *, params: Any, config: Mapping[str, Any],
         meta: Mapping[str, Any] | None = None, opt_state: Any = None, ema_params: Any = None,
         model_state: Any = None, data_iter: Mapping[str, Any] | None = None,
         log_state: Mapping[str, Any] | None = None, mngr: Manager | None = None) -> None:
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
  if log_state is not None:
    items["log_state"] = ocp.args.JsonSave(dict(log_state))
  own = mngr is None
  mngr = mngr or manager(directory)
  try:
    mngr.wait_until_finished()  # seals the previous step
    mngr.save(step, args=ocp.args.Composite(**items))
    mngr.unsealed.append(int(step))
    if own:
      mngr.wait_until_finished()
  except Exception as e:  # e.g. a full disk: the cause first, not thousands of lines later
    raise CheckpointError(f"cannot save checkpoint {directory} step {step}: "
                          f"{type(e).__name__}: {str(e)[:300]}; check the free space and "
                          f"permissions of {directory}", directory=str(directory),
                          step=step) from e
  finally:
    if own:
      mngr.close()


def latest_step(directory: str | pathlib.Path) -> int | None:
  """The newest step in `directory`, or None if it holds no checkpoint."""
  found = steps(directory)
  return found[-1] if found else None


def _read_item(mngr, directory, step: int, item: str, arg) -> Any:
  try:
    return mngr.restore(step, args=ocp.args.Composite(**{item: arg}))[item]
  except Exception as e:  # Orbax/TensorStore wrap read failures in many types
    raise CheckpointError(
        f"checkpoint {directory} step {step}, item {item!r} cannot be read "
        f"({type(e).__name__}: {str(e)[:300]}); {_ADVICE}",
        directory=str(directory), step=step, item=item) from e


def read_json(directory: str | pathlib.Path, item: str = "config", step: int | None = None):
  """Read one JSON item (`config`, `meta`, `data_iter`, `log_state`) without the arrays.

  The item's digest is checked first; with `step=None`, the newest step whose item is intact.
  """
  if item not in JSON_ITEMS:
    raise ValueError(f"{item!r} is not a JSON item; JSON items are {JSON_ITEMS}")
  step = resolve_step(directory, step, items=(item,))
  with manager(directory) as mngr:
    _check_integrity(directory, step, (item,))
    return _read_item(mngr, directory, step, item, ocp.args.JsonRestore())


def resolve_step(directory: str | pathlib.Path, step: int | None = None, *,
                 fallback: bool = True, items: tuple[str, ...] | None = None) -> int:
  """`step`, or (None) the newest step whose `items` pass their digests.

  With `fallback=False` the newest step must pass; a failing one raises CheckpointError.
  """
  found = steps(directory)
  if not found:
    raise NoCheckpointError(f"no checkpoint in {directory}")
  if step is not None:
    if int(step) not in found:
      raise NoCheckpointError(f"checkpoint {directory} has no step {step} (steps: {found})")
    return int(step)
  first = None
  for candidate in reversed(found):
    problems = [p for p in check_step(directory, candidate, items) if p[0] != "(digests)"]
    if not problems:
      if first is not None:
        log.warning("%s; using step %d, the newest intact one", first, candidate)
      return candidate
    first = first or _integrity_error(directory, candidate, problems)
    if not fallback:
      break
  raise first


def restore(directory: str | pathlib.Path, step: int | None = None, *,
            abstract: Mapping[str, Any] | None = None, items: tuple[str, ...] = ("params",),
            mngr: Manager | None = None, fallback: bool = True) -> dict[str, Any]:
  """Restore `items` of `step` (default the newest intact one) plus `config` and `meta`.

  `abstract` maps array items to pytrees of `jax.ShapeDtypeStruct` (with `.sharding`) or arrays;
  arrays are restored onto those shardings. Without it, arrays come back on the default device.
  Every item's files are checked against the step's digests before they are read. With
  `step=None` and `fallback`, a step that fails (digest or read) is reported and the next older
  one is tried. Returns a dict with the restored items, `step` and `skipped` (steps that failed).
  Raises CheckpointError (the first failure) when no step can be restored.
  """
  own = mngr is None
  mngr = mngr or manager(directory)
  names = tuple(dict.fromkeys(("config", "meta", *items)))
  try:
    found = steps(directory)
    if not found:
      raise NoCheckpointError(f"no checkpoint in {directory}")
    if step is not None:
      candidates = [resolve_step(directory, step)]
    else:
      candidates = list(reversed(found)) if fallback else [found[-1]]
    skipped, first = [], None
    for candidate in candidates:
      try:
        out = _restore_step(mngr, directory, candidate, names, abstract)
      except CheckpointError as e:
        first = first or e
        skipped.append(candidate)
        if len(candidates) > 1:
          log.warning("%s", e)
        continue
      if skipped:
        log.warning("checkpoint %s: restored step %d, the newest intact one (skipped %s)",
                    directory, candidate, skipped)
      out["skipped"] = skipped
      return out
    raise first
  finally:
    if own:
      mngr.close()


def _restore_step(mngr, directory, step: int, names: tuple[str, ...], abstract) -> dict[str, Any]:
  _check_integrity(directory, step, names)
  folder = step_dir(directory, step)
  out: dict[str, Any] = {}
  for item in names:
    if item in OPTIONAL_ITEMS and not (folder / item).exists():
      out[item] = None
      continue
    if item in JSON_ITEMS:
      arg = ocp.args.JsonRestore()
    elif abstract is not None and item in abstract:
      target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract[item])
      arg = ocp.args.StandardRestore(target)
    else:
      arg = ocp.args.StandardRestore()
    out[item] = _read_item(mngr, directory, step, item, arg)
  out["step"] = step
  return out
