"""argparse value types that refuse impossible numbers before a command starts any work."""

from __future__ import annotations

import argparse


def _number(kind, minimum, what: str):
  def parse(text: str):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if value < minimum:
      raise argparse.ArgumentTypeError(f"{text} is not {what}")
    return value
  parse.__name__ = what
  return parse


positive_int = _number(int, 1, "an integer >= 1")
non_negative_int = _number(int, 0, "an integer >= 0")
positive_float = _number(float, 1e-300, "a number > 0")
