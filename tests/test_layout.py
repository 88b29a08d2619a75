"""The package's layout: old import paths kept as aliases of the moved modules (one copy each)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("old, new", [
    ("lvm_jax.tasks.definitions", "lvm_jax.downstream.definitions"),
    ("lvm_jax.tasks.metrics", "lvm_jax.downstream.metrics"),
    ("lvm_jax.train.tasks", "lvm_jax.train.objectives"),
    ("lvm_jax.train.config_loading", "lvm_jax.config"),
    ("lvm_jax.search", "lvm_jax.export.search"),
    ("lvm_jax.data.reconstruct", "lvm_jax.export.reconstruct"),
])
def test_old_import_paths_are_the_moved_modules(old, new):
  assert importlib.import_module(old) is importlib.import_module(new)


def test_old_package_attribute_access():
  from lvm_jax import tasks
  from lvm_jax.downstream import labels
  assert tasks.labels is labels
  with pytest.raises(AttributeError):
    tasks.no_such_module  # noqa: B018
