"""`path.py:arg` config files and `--config.key=value` overrides (ml_collections.config_flags style).

A config file defines `get_config(arg: str | None) -> ml_collections.ConfigDict`; `arg` is the text
after the colon (a variant name, optionally with comma-separated switches). Overrides address
nested fields with dots and parse values as Python literals against the field's current type.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import pathlib
import sys
from typing import Sequence


def load_config(spec: str):
  """The ConfigDict of `path/to/config.py[:arg]`."""
  path, _, arg = spec.partition(":")
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"config file {path} not found")
  module_spec = importlib.util.spec_from_file_location(f"_lvm_config_{path.stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def _parse(raw: str, current):
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    value = raw
  if isinstance(current, bool) and isinstance(value, str):
    if value.lower() in ("true", "false"):
      return value.lower() == "true"
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if isinstance(value, tuple):
    value = list(value)
  if isinstance(current, (list, tuple)) and not isinstance(value, list):
    value = [value]
  if isinstance(current, str) and not isinstance(value, str):
    return raw
  return value


def apply_overrides(config, overrides: Sequence[str]):
  """Applies `key.sub=value` items (a leading `config.` is dropped) to a ConfigDict in place."""
  for item in overrides or ():
    key, sep, raw = item.partition("=")
    if not sep:
      raise ValueError(f"override {item!r} is not key=value")
    if key.startswith("config."):
      key = key[len("config."):]
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      if p not in node:
        raise KeyError(f"unknown config key {key!r}")
      node = node[p]
    if leaf not in node:
      raise KeyError(f"unknown config key {key!r}; known at that level: {sorted(node.keys())}")
    current = node[leaf]
    value = _parse(raw, current)
    with config.unlocked() if hasattr(config, "unlocked") else _null():
      node[leaf] = value
  return config


class _null:
  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False


def split_config_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.key=value` / `--config.key value` items from the other arguments."""
  rest, overrides = [], []
  argv = list(argv)
  i = 0
  while i < len(argv):
    a = argv[i]
    if a.startswith("--config."):
      if "=" in a:
        overrides.append(a[2:])
      else:
        overrides.append(f"{a[2:]}={argv[i + 1]}")
        i += 1
    else:
      rest.append(a)
    i += 1
  return rest, overrides


def accept_config_overrides(parser: argparse.ArgumentParser) -> None:
  """Makes `parser` keep `--config.key=value` items aside in `namespace.config_overrides`.

  The items are not argparse options (any field of the ConfigDict may be named); the command
  applies them with `apply_overrides` after loading `--config`.
  """
  parser.set_defaults(config_overrides=[])
  parse = parser.parse_known_args

  def parse_known_args(args=None, namespace=None):
    rest, overrides = split_config_args(sys.argv[1:] if args is None else args)
    namespace, extra = parse(rest, namespace)
    namespace.config_overrides = overrides
    return namespace, extra

  parser.parse_known_args = parse_known_args
