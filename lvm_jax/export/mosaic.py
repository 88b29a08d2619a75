"""A PNG mosaic of search results, images fetched from the survey source by file and row."""

from __future__ import annotations

import math
import pathlib
from typing import Any, Sequence

import numpy as np

from lvm_jax.export import sources


def _locator(source: sources.ExportSource):
  """A function (source_file, source_index) -> record index of `source`, or None if absent."""
  if source.kind == "hdf5":
    files = {p.resolve(): i for i, p in enumerate(source.source.paths)}
    starts = source.source._starts

    def locate(path, row):
      i = files.get(pathlib.Path(path).resolve())
      return None if i is None else starts[i] + int(row)
    return locate
  if source.kind == "fits":
    files = {p.resolve(): i for i, p in enumerate(source.source.paths)}
    return lambda path, row: files.get(pathlib.Path(path).resolve())
  if source.kind == "galaxy10":
    return lambda path, row: int(row)
  lookup = {}  # pre-cropped: a scan of the records' origins
  for i in range(len(source)):
    r = source.source[i]
    lookup[(pathlib.Path(r["source_file"]).name, int(r["source_index"]))] = i
  return lambda path, row: lookup.get((pathlib.Path(path).name, int(row)))


def display_image(record: dict[str, Any], image_kind: str) -> np.ndarray:
  """(H, W, 3) uint8 for display: the Legacy Survey `dr2` composite of fluxes, or the RGB as is."""
  from lvm_jax.data.preprocess import display_rgb
  image = np.asarray(record["image"])
  if image_kind == "display_rgb":
    return image.astype(np.uint8)
  return display_rgb(image)


def panel_figure(panels: Sequence[dict[str, Any]], images, columns: int = 6):
  """A matplotlib Figure: one image per panel ({source_file, source_index, title}), fetched
  from `images` (a survey source path or an open `ExportSource`); blank when absent."""
  import matplotlib.pyplot as plt
  source = images if isinstance(images, sources.ExportSource) else sources.open_source(images)
  locate = _locator(source)
  n_rows = max(1, math.ceil(len(panels) / columns))
  fig, axes = plt.subplots(n_rows, columns, figsize=(2 * columns, 2.2 * n_rows), squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for ax, panel in zip(axes.ravel(), panels):
    index = locate(panel["source_file"], panel["source_index"])
    if index is not None:
      ax.imshow(display_image(source.record(index), source.image_kind))
    ax.set_title(panel["title"], fontsize=6)
  fig.tight_layout()
  return fig


def write_mosaic(rows: Sequence[dict[str, Any]], images: str | pathlib.Path,
                 png: str | pathlib.Path, anchor: dict[str, Any] | None = None,
                 columns: int = 6) -> pathlib.Path:
  """A grid of the anchor (if given) and each neighbour, titled by id and similarity."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  panels = ([dict(anchor, title=f"query {anchor['id']}")] if anchor else []) + [
      dict(r, title=f"{r['rank']}: {r['id']}\n{r['similarity']:.4f}") for r in rows]
  fig = panel_figure(panels, images, columns)
  png = pathlib.Path(png)
  fig.savefig(png, dpi=120)
  plt.close(fig)
  return png
