"""Where training reports go: a JSONL log, TensorBoard event files, PNG galleries, progress bar.

Only process 0 writes; the others get no-op writers. The JSONL log is the record: on resume,
lines past the restored step (written by a run killed after its last checkpoint) are dropped
and the TensorBoard files are rebuilt from the kept lines, so both show the history of an
uninterrupted run.
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
    self.tb_dir = pathlib.Path(workdir) / "tensorboard"
    self._tb = None
    self._tb_wanted = enabled and tensorboard

  def _board(self):
    """The TensorBoard writer, opened on first use (None without tensorboardX)."""
    if self._tb is None and self._tb_wanted:
      try:
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(str(self.tb_dir))
      except ImportError:  # TensorBoard files are optional; the JSONL log is the record
        self._tb_wanted = False
    return self._tb

  def truncate_after(self, step: int) -> None:
    """Drops records past `step` and rebuilds the TensorBoard files from the kept ones."""
    if not self.enabled or not self.path.exists():
      return
    lines = [l for l in self.path.read_text().splitlines()
             if l.strip() and json.loads(l).get("step", 0) <= step]
    self.path.write_text("".join(l + "\n" for l in lines))
    if self._tb_wanted and self.tb_dir.is_dir():
      if self._tb is not None:
        self._tb.close()
        self._tb = None
      for old in self.tb_dir.glob("events.out.tfevents.*"):
        old.unlink()
      for record in map(json.loads, lines):
        self._scalars(record["step"], record["kind"], record)

  def _scalars(self, step: int, kind: str, metrics: Mapping[str, Any]) -> None:
    board = self._board()
    if board is None:
      return
    for k, v in metrics.items():
      if k in ("step", "kind") or isinstance(v, bool):
        continue
      if isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v):
        board.add_scalar(f"{kind}/{k}", float(v), int(step))
    board.flush()

  def write(self, step: int, kind: str, metrics: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "kind": kind, **{k: _jsonable(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    self._scalars(step, kind, metrics)

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
