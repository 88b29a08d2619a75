"""Moved to `lvm_jax.downstream`; this name stays for one release.

`import lvm_jax.tasks.definitions` and `from lvm_jax.tasks import definitions` give the modules
of `lvm_jax.downstream` themselves (one copy of each class), not new copies.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

_OLD, _NEW = __name__, "lvm_jax.downstream"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Finds `lvm_jax.tasks.X` as the already-imported module `lvm_jax.downstream.X`."""

  def find_spec(self, fullname, path=None, target=None):
    if not fullname.startswith(_OLD + "."):
      return None
    return importlib.util.spec_from_loader(fullname, self)

  def create_module(self, spec):
    return importlib.import_module(_NEW + spec.name[len(_OLD):])

  def exec_module(self, module):
    pass


if not any(isinstance(f, _Alias) for f in sys.meta_path):
  sys.meta_path.insert(0, _Alias())


def __getattr__(name):
  try:
    return importlib.import_module(f"{_NEW}.{name}")
  except ModuleNotFoundError as e:
    raise AttributeError(f"module {_OLD!r} has no attribute {name!r}") from e
