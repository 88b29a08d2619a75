"""`--set key=value` overrides for ConfigDicts on the command line (values as Python literals)."""

from __future__ import annotations

import ast


def apply_overrides(config, overrides: list[str] | None):
  """Set `key=value` pairs on a ConfigDict; unknown keys raise, values parse as literals.

  `depths=2,2,2,2` parses as a tuple; bare words that are not literals stay strings.
  """
  for item in overrides or []:
    key, sep, raw = item.partition("=")
    if not sep:
      raise ValueError(f"override {item!r} is not key=value")
    if key not in config:
      raise KeyError(f"unknown config key {key!r}; known: {sorted(config.keys())}")
    try:
      value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      value = raw
    if isinstance(value, tuple):
      value = list(value)
    setattr(config, key, value)
  return config
