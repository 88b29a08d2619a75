"""The package's layout: old import paths kept as aliases of the moved modules (one copy each)."""

from __future__ import annotations

import ast
import importlib
import pathlib

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


@pytest.mark.parametrize("old, name, new", [
    ("lvm_jax.data.pipeline", "GlobalBatchIterator", "lvm_jax.train.input"),
    ("lvm_jax.data.pipeline", "fast_resize", "lvm_jax.data.preprocess"),
    ("lvm_jax.data.pipeline", "resize_matrix", "lvm_jax.data.preprocess"),
    ("lvm_jax.data.pipeline", "apply_preprocessing", "lvm_jax.data.preprocess"),
    ("lvm_jax.data.pipeline", "Augmentation", "lvm_jax.data.augment"),
    ("lvm_jax.detect.fields", "Field", "lvm_jax.detect.field"),
    ("lvm_jax.detect.fields", "read_fits_field", "lvm_jax.detect.fits_fields"),
    ("lvm_jax.detect.fields", "write_fits_field", "lvm_jax.detect.fits_fields"),
    ("lvm_jax.downstream.evaluation", "flux_calibration", "lvm_jax.downstream.scoring"),
    ("lvm_jax.downstream.evaluation", "reference_scores", "lvm_jax.downstream.scoring"),
    ("lvm_jax.downstream.evaluation", "make_tasks", "lvm_jax.downstream.strategies"),
    ("lvm_jax.downstream.evaluation", "run_strategies", "lvm_jax.downstream.strategies"),
    ("lvm_jax.downstream.evaluation", "PSF_AWARE_LABEL", "lvm_jax.downstream.definitions"),
    ("lvm_jax.convert.readers", "RefusedGlobalError", "lvm_jax.convert.torch_pickle"),
])
def test_moved_names_stay_importable_from_their_old_module(old, name, new):
  assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


def test_old_package_attribute_access():
  from lvm_jax import tasks
  from lvm_jax.downstream import labels
  assert tasks.labels is labels
  with pytest.raises(AttributeError):
    tasks.no_such_module  # noqa: B018


def _package_dir() -> pathlib.Path:
  import lvm_jax
  return pathlib.Path(lvm_jax.__file__).parent


def _modules() -> dict[str, pathlib.Path]:
  """Every module of lvm_jax by dotted name (a package by its name, from its __init__.py)."""
  root = _package_dir()
  out = {}
  for path in sorted(root.rglob("*.py")):
    parts = ("lvm_jax",) + path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
      parts = parts[:-1]
    out[".".join(parts)] = path
  return out


def import_graph() -> dict[str, set[str]]:
  """Module -> the lvm_jax modules it imports, at module level or inside functions.

  `from lvm_jax.x import y` counts as an import of `lvm_jax.x.y` when that is a module, else of
  `lvm_jax.x`; relative imports are resolved against the importing module's package.
  """
  modules = _modules()
  graph: dict[str, set[str]] = {}
  for name, path in modules.items():
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
          base = ".".join(anchor + ([base] if base else []))
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                   for a in node.names]
      else:
        continue
      for target in targets:
        while target and target not in modules:  # `import lvm_jax.x.y` names module x.y
          target = target.rpartition(".")[0]
        if target and target != name:
          edges.add(target)
    graph[name] = edges
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of `graph` as [a, b, ..., a], or None."""
  state: dict[str, int] = {}  # 1: on the stack, 2: done
  stack: list[str] = []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def test_find_cycle_names_a_cycle():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_sees_function_level_and_submodule_imports():
  graph = import_graph()
  assert {"lvm_jax.demo", "lvm_jax.detect.commands"} <= graph["lvm_jax.cli"]
  # `from lvm_jax.downstream import evaluation, report` inside the command's function
  assert {"lvm_jax.downstream.evaluation", "lvm_jax.downstream.report"} <= graph[
      "lvm_jax.downstream.commands"]
  # `from lvm_jax.train import input as input_lib` names the submodule, not the package
  assert "lvm_jax.train.input" in graph["lvm_jax.train.trainer"]


def test_no_import_cycle():
  graph = import_graph()
  cycle = find_cycle(graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


MAX_MODULE_LINES = 400


def test_no_module_over_400_lines():
  long = {str(path.relative_to(_package_dir().parent)): n
          for path in _modules().values()
          if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
  assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def test_no_path_building_from_parents(repo_root):
  """Paths come from `lvm_jax.shared_paths`, `importlib.resources` or fixtures (`repo_root`,
  `fixtures_dir`), never from counting a file's parent folders."""
  needle = "parents" + "["  # spelled apart so that this file does not match itself
  found = [f"{path.relative_to(repo_root)}:{i}"
           for folder in ("lvm_jax", "tests") for path in sorted((repo_root / folder).rglob("*.py"))
           for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if needle in line]
  assert not found, f"{needle} path building (use shared_paths or a fixture): {found}"
