"""Which config fields may change when a workdir is resumed, and the check against the saved one.

A resumed run continues the saved one, so its config must describe the same run. Fields that
only change how long it runs or how it reports may differ (`RESUMABLE`, shell-style patterns on
dotted keys); any other difference is refused with `ResumeError` listing the keys, unless the
caller allows it (`lvm-jax train --allow_config_change`), in which case the differences are
logged as a warning.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from typing import Any, Mapping

from lvm_jax.errors import ResumeError

log = logging.getLogger(__name__)

RESUMABLE = (
    "num_steps",            # train longer (or stop earlier); the schedule follows num_steps
    "log.*",                # log and gallery intervals, TensorBoard, progress bar, profiling
    "checkpoint.every_steps", "checkpoint.keep", "checkpoint.async_save",
    "eval.every_steps", "eval.batch_size",
    "data.prefetch", "data.worker_count",  # input-pipeline throughput, not its content
    "mesh.*", "sharding.*",  # the device layout: arrays are restored onto the new shardings
    "debug.*",
)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{"a.b": value} of a nested mapping (JSON values)."""
  out = {}
  for k, v in tree.items():
    key = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(flatten(v, key + "."))
    else:
      out[key] = v
  return out


# Fields added to the configs after runs were saved, with the value that means what their
# absence meant: a saved run without the field equals a new config holding that value.
ADDED_FIELDS = {
    "data.split": "",       # every record of data.files
}


def differences(saved: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """Dotted keys whose values differ (present in one only counts too, except a field of
  `ADDED_FIELDS` at its neutral value), sorted."""
  a, b = flatten(json.loads(json.dumps(saved))), flatten(json.loads(json.dumps(new)))
  for key, neutral in ADDED_FIELDS.items():
    for x in (a, b):
      x.setdefault(key, neutral)
  return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def resumable(key: str) -> bool:
  return any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE)


def check(saved: Mapping[str, Any], new: Mapping[str, Any], *, workdir: str = "",
          allow_change: bool = False) -> list[str]:
  """Raises ResumeError for differences outside `RESUMABLE`; returns all differing keys."""
  changed = differences(saved, new)
  refused = [k for k in changed if not resumable(k)]
  if refused and not allow_change:
    shown = ", ".join(f"{k} (saved {flatten(saved).get(k, '<absent>')!r}, now "
                      f"{flatten(new).get(k, '<absent>')!r})" for k in refused[:8])
    more = f" and {len(refused) - 8} more" if len(refused) > 8 else ""
    raise ResumeError(
        f"{workdir} holds a run with another config: {shown}{more}. Resume with the saved "
        f"config (its config.json), use a new --workdir, or pass --allow_config_change")
  if refused:
    log.warning("resuming %s with changed config fields %s (allowed by the caller)", workdir,
                refused)
  return changed
