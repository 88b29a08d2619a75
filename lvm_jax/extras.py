"""Which optional extra provides a module, and the one-line message of a command that lacks one.

The extras are those of `pyproject.toml` (`pip install 'lvm-jax[sim,app]'`):

| extra | modules it provides |
| --- | --- |
| `data` | astropy, h5py, pyarrow, grain, skimage, cv2, ... (`MODULES["data"]`) |
| `sim` | galsim (and `data`) |
| `app` | panel, matplotlib (and `data`) |
| `ann` | faiss |
| `catalogue` | hats, hats_import, lsdb, dask, distributed (and `data`) |
| `notebook` | nbclient, nbformat, ipykernel, matplotlib |

A command calls `require("sim", "app", command="demo")` before any work; when a module is
missing it raises `MissingExtraError`, which `lvm-jax` prints on one line with exit status 2:

    lvm-jax demo: error: lvm-jax demo needs the 'sim' and 'app' extras (galsim, panel not
    installed): pip install 'lvm-jax[sim,app]'

Modules are looked up with `importlib.util.find_spec`, which imports nothing.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

from lvm_jax.errors import UserError

# extra -> the top-level modules it installs (its own, not those of the extras it includes).
MODULES = {
    "data": ("astropy", "h5py", "pyarrow", "grain", "array_record", "tensorflow_datasets",
             "skimage", "cv2", "PIL", "scipy", "matplotlib"),
    "sim": ("galsim",),
    "app": ("panel", "matplotlib"),
    "ann": ("faiss",),
    "catalogue": ("hats", "hats_import", "lsdb", "dask", "distributed"),
    "notebook": ("nbclient", "nbformat", "ipykernel", "matplotlib"),
}
# extra -> the extras it includes (pyproject.toml: "lvm-jax[data]").
INCLUDES = {"sim": ("data",), "app": ("data",), "catalogue": ("data",)}
SHOWN_MODULES = 4  # missing modules named in the message; the rest are counted


class MissingExtraError(UserError, ImportError):
  """A command needs an optional extra that is not installed; the message says what to install."""


def _installed(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):  # a parent package that fails, a module without a spec
    return False


# The look-up, replaceable in tests: module name -> installed?
is_installed: Callable[[str], bool] = _installed


def modules_of(extra: str) -> tuple[str, ...]:
  """Every module `extra` provides: its own first, then those of the extras it includes."""
  if extra not in MODULES:
    raise ValueError(f"unknown extra {extra!r}; known: {sorted(MODULES)}")
  out: list[str] = []
  for name in (extra, *INCLUDES.get(extra, ())):
    out.extend(m for m in MODULES[name] if m not in out)
  return tuple(out)


def extra_for(module: str) -> str | None:
  """The extra that provides `module` (a dotted name counts by its top level), or None."""
  top = module.split(".")[0]
  for extra, modules in MODULES.items():
    if top in modules:
      return extra
  return None


def missing(*extras: str) -> dict[str, list[str]]:
  """{extra: its modules that are not installed} for each of `extras` that lacks any."""
  out = {}
  for extra in extras:
    absent = [m for m in modules_of(extra) if not is_installed(m)]
    if absent:
      out[extra] = absent
  return out


def _quoted(names: list[str]) -> str:
  quoted = [f"'{n}'" for n in names]
  return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def message(command: str, absent: dict[str, list[str]]) -> str:
  """`lvm-jax COMMAND needs the 'x' extra (m not installed): pip install 'lvm-jax[x]'`."""
  extras = list(absent)
  modules: list[str] = []  # each extra's own modules first, then those of the included ones
  for own in (True, False):
    for extra, names in absent.items():
      mine = MODULES.get(extra, ())
      modules.extend(m for m in names if (m in mine) == own and m not in modules)
  noun = "extra" if len(extras) == 1 else "extras"
  shown = ", ".join(modules[:SHOWN_MODULES])
  if len(modules) > SHOWN_MODULES:
    shown += f" and {len(modules) - SHOWN_MODULES} more"
  return (f"lvm-jax {command} needs the {_quoted(extras)} {noun} ({shown} not installed): "
          f"pip install 'lvm-jax[{','.join(extras)}]'")


def require(*extras: str, command: str) -> None:
  """Raises `MissingExtraError` (one line, naming the extras to install) unless every module of
  `extras` is installed."""
  absent = missing(*extras)
  if absent:
    raise MissingExtraError(message(command, absent))


def from_import_error(error: ImportError, command: str) -> MissingExtraError | None:
  """The `MissingExtraError` for an import that failed because an extra is not installed, or
  None when the module belongs to no extra."""
  name = getattr(error, "name", None) or ""
  extra = extra_for(name)
  if extra is None:
    return None
  return MissingExtraError(message(command, {extra: [name.split(".")[0]]}))
