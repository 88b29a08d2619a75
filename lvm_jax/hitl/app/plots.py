"""The session's figures as PNG bytes: score histogram, discovery curve, PCA map of the
embeddings with labelled and recommended objects.

Figures are made with matplotlib's object API on an Agg canvas (no pyplot state), so browser
sessions may draw from their own threads at once.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_SIZE = (4.0, 2.6)  # inches


def _subplots(figsize=_SIZE):
  fig = Figure(figsize=figsize)
  FigureCanvasAgg(fig)
  return fig, fig.add_subplot()


def _png(fig) -> bytes:
  buf = io.BytesIO()
  fig.tight_layout()
  fig.savefig(buf, format="png", dpi=80)
  return buf.getvalue()


def score_histogram(scores: np.ndarray) -> bytes:
  """Histogram of the (N,) positive-class probabilities (empty before the first round)."""
  fig, ax = _subplots()
  s = scores[np.isfinite(scores)]
  if s.size:
    ax.hist(s, bins=40, range=(0, 1), color="#4477aa")
    ax.set_yscale("log")
  else:
    ax.text(0.5, 0.5, "no model yet", ha="center", va="center", transform=ax.transAxes)
  ax.set_xlabel("score")
  ax.set_ylabel("objects")
  return _png(fig)


def discovery_curve(curve: np.ndarray) -> bytes:
  """Positives found against objects labelled (`Session.discovery_curve()`)."""
  fig, ax = _subplots()
  ax.plot(np.arange(1, len(curve) + 1), curve, color="#228833", drawstyle="steps-post")
  ax.set_xlabel("objects labelled")
  ax.set_ylabel("positives found")
  return _png(fig)


def pca_map(xy: np.ndarray, positives: np.ndarray, negatives: np.ndarray,
            recommended: np.ndarray) -> bytes:
  """The (N, 2) PCA map in grey with labelled (rows) and recommended (rows) objects on top."""
  fig, ax = _subplots((4.0, 3.4))
  ax.scatter(xy[:, 0], xy[:, 1], s=2, c="#bbbbbb", linewidths=0, rasterized=True)
  for rows, colour, name in ((negatives, "#4477aa", "no"), (positives, "#ee6677", "yes"),
                             (recommended, "#ccbb44", "recommended")):
    if len(rows):
      ax.scatter(xy[rows, 0], xy[rows, 1], s=14, c=colour, label=name, edgecolors="k",
                 linewidths=0.3)
  ax.set_xlabel("PC 1")
  ax.set_ylabel("PC 2")
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7, loc="best")
  return _png(fig)
