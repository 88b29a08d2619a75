"""Config names, config files and `--config.key=value` overrides (ml_collections.config_flags style).

A config is a module with `get_config(arg: str | None) -> ml_collections.ConfigDict`; `arg` is the
text after the colon (a variant name, optionally with comma-separated switches). `--config` takes

* a packaged config by name: `pretrain:tiny`, `downstream:quick`, `export:cpu`, `detect` (the
  modules of `lvm_jax/configs/`, listed by `names()`), or
* a config file: `path/to/my_config.py[:arg]`. The spelling `configs/pretrain.py:tiny` of a
  source checkout still works where no such file exists: it names the packaged `pretrain`.

Overrides address nested fields with dots and parse values as Python literals against the
field's current type: a value that does not fit the field's type (`batch_size=abc`,
`batch_size=1.5`), an unknown key or a missing value is a `ConfigError`, as are an unknown
config name, variant or preset. `validate` checks the ranges (`RANGES`) before any work.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.resources
import importlib.util
import pathlib
import sys
from typing import Sequence

from lvm_jax.errors import ConfigError

CONFIG_PACKAGE = "lvm_jax.configs"

# Dotted key -> (minimum, inclusive?): ranges checked by `validate` wherever the key exists.
RANGES = {
    "num_steps": (1, True), "batch_size": (1, True), "grad_accum": (1, True),
    "optimizer.lr": (0, False), "optimizer.warmup_steps": (0, True),
    "log.every_steps": (1, True), "checkpoint.every_steps": (1, True), "checkpoint.keep": (1, True),
    "eval.every_steps": (1, True), "eval.batch_size": (1, True), "data.val_size": (0, True),
    "data.prefetch": (0, True), "data.worker_count": (0, True), "model.img_size": (1, True),
    "model.embed_dim": (1, True), "ema_decay": (0, True), "chunk_size": (1, True),
    "workers": (0, True),
}


class MissingConfigFileError(ConfigError, FileNotFoundError):
  """A config file path that does not exist (and names no packaged config)."""

  def __str__(self) -> str:
    return str(self.args[0]) if self.args else ""


class UnknownKeyError(ConfigError, KeyError):
  """A `--config.key` that the config does not have."""

  def __str__(self) -> str:
    return str(self.args[0]) if self.args else ""


def names() -> list[str]:
  """The packaged config names (the modules of `lvm_jax/configs/`)."""
  return sorted(entry.name[:-3] for entry in importlib.resources.files(CONFIG_PACKAGE).iterdir()
                if entry.name.endswith(".py") and not entry.name.startswith("_"))


def _split(spec: str) -> tuple[str, str | None]:
  """`NAME_OR_PATH[:arg]` -> (name or path, arg or None); a drive letter's colon is kept."""
  head, sep, arg = spec.rpartition(":") if spec.count(":") > 1 else spec.partition(":")
  if not sep:
    return spec, None
  return head, arg or None


def _module(where: str):
  path = pathlib.Path(where)
  looks_like_path = where.endswith(".py") or "/" in where or "\\" in where
  if looks_like_path and path.is_file():
    spec = importlib.util.spec_from_file_location(f"_lvm_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
  name = path.stem if looks_like_path else where
  if looks_like_path and not (path.parent.name == "configs" and name in names()):
    raise MissingConfigFileError(f"config file {path} not found (packaged configs: {', '.join(names())})")
  if name not in names():
    raise ConfigError(f"unknown config {where!r}; packaged configs: {', '.join(names())}, "
                      "or give a path to a .py file with get_config(arg)")
  return importlib.import_module(f"{CONFIG_PACKAGE}.{name}")


def load_config(spec: str, overrides: Sequence[str] = ()):
  """The ConfigDict of `name[:arg]` or `path/to/config.py[:arg]`, with `key=value` overrides."""
  where, arg = _split(spec)
  module = _module(where)
  try:
    config = module.get_config(arg)
  except ConfigError:
    raise
  except (ValueError, KeyError) as e:  # an unknown variant or preset
    raise ConfigError(f"{spec}: {e.args[0] if e.args else e}") from e
  return apply_overrides(config, overrides) if overrides else config


def _type_error(key: str, raw: str, current) -> ConfigError:
  return ConfigError(f"--config.{key}={raw}: expected {type(current).__name__} like "
                     f"{current!r}")


# Fields whose None has a meaning, so `--config.KEY=None` is accepted for them:
# `qk_scale` None is the attention scale head_dim ** -0.5 (the SUNet spec's default).
NULLABLE_FIELDS = frozenset({"qk_scale"})


def _checked(key: str, raw: str, current, value):
  """`value` if it fits the type of `current`; ConfigError naming the key otherwise."""
  if current is None or isinstance(current, str):
    return value
  if value is None and key.rsplit(".", 1)[-1] in NULLABLE_FIELDS:
    return value
  if isinstance(current, bool):
    if not isinstance(value, bool):
      raise _type_error(key, raw, current)
  elif isinstance(current, int):
    if isinstance(value, bool) or not isinstance(value, int):
      raise _type_error(key, raw, current)
  elif isinstance(current, float):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise _type_error(key, raw, current)
  elif isinstance(current, (list, tuple)) and not isinstance(value, list):
    raise _type_error(key, raw, current)
  return value


def validate(config) -> None:
  """Raises ConfigError naming every field outside `RANGES` (e.g. batch_size=0, lr <= 0)."""
  problems = []
  for key, (low, inclusive) in RANGES.items():
    node = config
    for part in key.split("."):
      node = node.get(part) if hasattr(node, "get") else None
      if node is None:
        break
    if node is None or isinstance(node, bool) or not isinstance(node, (int, float)):
      continue
    if node < low or (node == low and not inclusive):
      problems.append(f"{key}={node!r} (must be {'>=' if inclusive else '>'} {low})")
  if problems:
    raise ConfigError("invalid config values: " + ", ".join(problems))


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
      raise ConfigError(f"override {item!r} is not key=value")
    if key.startswith("config."):
      key = key[len("config."):]
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      if p not in node or not hasattr(node[p], "keys"):
        raise UnknownKeyError(f"unknown config key {key!r}")
      node = node[p]
    if leaf not in node:
      raise UnknownKeyError(f"unknown config key {key!r}; known at that level: "
                            f"{sorted(node.keys())}")
    current = node[leaf]
    value = _checked(key, raw, current, _parse(raw, current))
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
      elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
        overrides.append(f"{a[2:]}={argv[i + 1]}")
        i += 1
      else:
        raise ConfigError(f"{a} has no value; write {a}=VALUE")
    else:
      rest.append(a)
    i += 1
  return rest, overrides


def add_config_argument(parser: argparse.ArgumentParser, *, default: str | None = None,
                        example: str = "pretrain:tiny") -> None:
  """`--config NAME[:arg] | PATH.py[:arg]` plus `--config.key=value` overrides on `parser`."""
  help_text = (f"packaged config name and argument (e.g. {example}; known: {', '.join(names())}) "
               "or a config file path.py[:arg]")
  if default is None:
    parser.add_argument("--config", required=True, help=help_text)
  else:
    parser.add_argument("--config", default=default, help=f"{help_text} (default {default})")
  accept_config_overrides(parser)


def config_from_args(args: argparse.Namespace):
  """The ConfigDict of `args.config` with the `--config.key=value` items applied."""
  return load_config(args.config, getattr(args, "config_overrides", None) or ())


def accept_config_overrides(parser: argparse.ArgumentParser) -> None:
  """Makes `parser` keep `--config.key=value` items aside in `namespace.config_overrides`.

  The items are not argparse options (any field of the ConfigDict may be named); the command
  applies them with `apply_overrides` after loading `--config`.
  """
  parser.set_defaults(config_overrides=[])
  parse = parser.parse_known_args

  def parse_known_args(args=None, namespace=None):
    try:
      rest, overrides = split_config_args(sys.argv[1:] if args is None else args)
    except ConfigError as e:
      parser.error(str(e))  # `lvm-jax COMMAND: error: ...`, exit status 2
    namespace, extra = parse(rest, namespace)
    namespace.config_overrides = overrides
    return namespace, extra

  parser.parse_known_args = parse_known_args
