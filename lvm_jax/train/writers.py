"""Where training reports go: a JSONL log, TensorBoard event files, PNG galleries, progress bar.

Only process 0 writes; the others get no-op writers.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping

import numpy as np

LOG_NAME = "train_log.jsonl"


def _jsonable(v):
  if isinstance(v, (np.floating, np.integer)):
    return v.item()
  if isinstance(v, np.ndarray):
    return v.tolist()
  return v


class MetricWriter:
  """JSONL lines {"step": s, "kind": "train"|"eval", ...} plus TensorBoard scalars."""

  def __init__(self, workdir: str | pathlib.Path, enabled: bool = True,
               tensorboard: bool = True):
    self.enabled = enabled
    self.path = pathlib.Path(workdir) / LOG_NAME
    self._tb = None
    if enabled and tensorboard:
      try:
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))
      except ImportError:  # TensorBoard files are optional; the JSONL log is the record
        self._tb = None

  def truncate_after(self, step: int) -> None:
    """Drops records past `step` (written by a run killed after its last checkpoint)."""
    if not self.enabled or not self.path.exists():
      return
    lines = [l for l in self.path.read_text().splitlines()
             if l.strip() and json.loads(l).get("step", 0) <= step]
    self.path.write_text("".join(l + "\n" for l in lines))

  def write(self, step: int, kind: str, metrics: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "kind": kind, **{k: _jsonable(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for k, v in metrics.items():
        if isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v):
          self._tb.add_scalar(f"{kind}/{k}", float(v), int(step))
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_log(workdir: str | pathlib.Path, kind: str | None = None) -> list[dict[str, Any]]:
  path = pathlib.Path(workdir) / LOG_NAME
  if not path.exists():
    return []
  records = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
  return [r for r in records if kind is None or r["kind"] == kind]


def save_gallery(path: str | pathlib.Path, target: np.ndarray, degraded: np.ndarray,
                 reconstruction: np.ndarray, title: str = "") -> None:
  """PNG rows of (input, degraded input, reconstruction, residual), r band, per image."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  n = len(target)
  fig, axes = plt.subplots(n, 4, figsize=(8, 2 * n), squeeze=False)
  band = 1 if target.shape[-1] > 1 else 0
  for i in range(n):
    lo, hi = np.percentile(target[i, ..., band], [1, 99.5])
    res = reconstruction[i, ..., band] - target[i, ..., band]
    r = max(float(np.abs(res).max()), 1e-6)
    panels = [(target[i, ..., band], "input", "gray", lo, hi),
              (degraded[i, ..., band], "model input", "gray", lo, hi),
              (reconstruction[i, ..., band], "reconstruction", "gray", lo, hi),
              (res, "residual", "RdBu_r", -r, r)]
    for ax, (img, name, cmap, vmin, vmax) in zip(axes[i], panels):
      ax.imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_title(name, fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  plt.close(fig)
