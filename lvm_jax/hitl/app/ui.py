"""The page of one browser session: `build_app(data)` is called by the server per session.

Every `Session` call runs on the browser session's own worker thread (SQLite connections
belong to the thread that opened them), so the page stays responsive while a round trains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from typing import Any

import numpy as np
import panel as pn

from lvm_jax.hitl.app import plots
from lvm_jax.hitl.app.data import AppData
from lvm_jax.hitl.app.grid import ThumbnailGrid
from lvm_jax.hitl.app.state import AppState


class HitlPage:
  """Widgets of one browser session around its `AppState`."""

  def __init__(self, data: AppData, user: str | None = None):
    self.data = data
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hitl-session")
    self.state: AppState = self._pool.submit(AppState, data, user).result()
    self.grid = ThumbnailGrid(sizing_mode="stretch_width")
    self.grid.param.watch(self._on_action, "action")
    self.status = pn.pane.Markdown("", css_classes=["lvm-status"])
    self.metrics = pn.pane.Markdown("", css_classes=["lvm-metrics"])
    self.progress = pn.indicators.Progress(active=False, visible=False, width=200,
                                           name="training")
    self.next_button = pn.widgets.Button(name="Next round", button_type="primary")
    self.undo_button = pn.widgets.Button(name="Undo")
    self.prev_page = pn.widgets.Button(name="\u2190 page", width=80)
    self.next_page = pn.widgets.Button(name="page \u2192", width=80)
    self.page_text = pn.pane.Str("")
    self.export_format = pn.widgets.Select(
        options=["parquet", "csv", "fits", "votable"], value=data.config.export_format,
        width=100)
    self.export_button = pn.widgets.Button(name="Export for paper", button_type="success")
    self.start_kind = pn.widgets.RadioButtonGroup(
        options=["random", "ids", "position"], value="random")
    self.ids_input = pn.widgets.TextAreaInput(placeholder="ids, one per line or comma", height=80)
    self.ra_input = pn.widgets.FloatInput(name="ra (deg)", value=None, width=110)
    self.dec_input = pn.widgets.FloatInput(name="dec (deg)", value=None, width=110)
    self.start_button = pn.widgets.Button(name="Show prompts")
    self.hist = pn.pane.PNG(None, width=320)
    self.curve = pn.pane.PNG(None, width=320)
    self.pca = pn.pane.PNG(None, width=320)
    for button, handler in ((self.next_button, self._on_next_round),
                            (self.undo_button, self._on_undo),
                            (self.prev_page, lambda e: self._on_page(-1)),
                            (self.next_page, lambda e: self._on_page(1)),
                            (self.export_button, self._on_export),
                            (self.start_button, self._on_start)):
      button.on_click(handler)
    self._render(self.state.cards(), self._figures())

  # -- worker thread ----------------------------------------------------------------------

  async def _call(self, fn, *args) -> Any:
    return await asyncio.wrap_future(self._pool.submit(fn, *args))

  def close(self) -> None:
    """Closes the Session (on its thread) when the browser session ends."""
    self._pool.submit(self.state.session.close)
    self._pool.shutdown(wait=False)

  # -- rendering --------------------------------------------------------------------------

  def _figures(self) -> dict[str, bytes]:
    """PNG bytes of the histogram, discovery curve and PCA map (runs on the worker)."""
    s = self.state
    labels = s.labels()
    rows = lambda v: np.array([s.data.row[k] for k, lab in labels.items() if lab == v], int)
    pending = np.array([s.data.row[str(k)] for k in s.session.pending], int)
    return {"hist": plots.score_histogram(s.session.scores()),
            "curve": plots.discovery_curve(s.session.discovery_curve()),
            "pca": plots.pca_map(s.data.pca, rows("1"), rows("0"), pending)}

  def _render(self, cards: list[dict[str, Any]], figures: dict[str, bytes] | None = None,
              ) -> None:
    s = self.state
    images = {c["id"]: c.pop("src") for c in cards}
    if set(images) != set(self.grid.images):
      self.grid.images = images
    self.grid.content = {"cards": cards, "mode": s.mode, "round": s.session.round,
                      "page": s.page, "pages": s.pages}
    self.page_text.object = f"page {s.page + 1} / {s.pages} \u00b7 {s.mode}"
    self.status.object = s.message
    self.metrics.object = "```\n" + json.dumps(s.metrics(), indent=1, default=str) + "\n```"
    if figures:
      self.hist.object, self.curve.object = figures["hist"], figures["curve"]
      self.pca.object = figures["pca"]

  async def _refresh(self, figures: bool = False) -> None:
    cards = await self._call(self.state.cards)
    figs = await self._call(self._figures) if figures else None
    self._render(cards, figs)

  async def _guarded(self, coro) -> None:
    try:
      await coro
    except Exception as e:  # pylint: disable=broad-except
      self.status.object = f"**error:** {type(e).__name__}: {e}"

  # -- handlers ---------------------------------------------------------------------------

  async def _on_action(self, event) -> None:
    action = event.new or {}
    if action.get("kind") == "label":
      await self._guarded(self._label(action["id"], action["value"]))
    elif action.get("kind") == "similar":
      await self._guarded(self._similar(action["id"]))

  async def _label(self, object_id: str, value: str) -> None:
    """Labels on the worker; the cards are redrawn from the store's state, failed or not."""
    try:
      await self._call(self.state.label, object_id, value)
    finally:
      await self._refresh()

  async def _similar(self, object_id: str) -> None:
    await self._call(self.state.show_similar, object_id)
    await self._refresh()

  async def _on_next_round(self, _event) -> None:
    self.next_button.disabled = True
    self.progress.visible, self.progress.active = True, True
    self.status.object = "training..."
    try:
      await self._guarded(self._next_round())
    finally:
      self.progress.visible, self.progress.active = False, False
      self.next_button.disabled = False

  async def _next_round(self) -> None:
    await self._call(self.state.next_round)
    await self._refresh(figures=True)

  async def _on_undo(self, _event) -> None:
    await self._guarded(self._undo())

  async def _undo(self) -> None:
    await self._call(self.state.undo)
    await self._refresh(figures=True)

  async def _on_page(self, step: int) -> None:
    self.state.set_page(self.state.page + step)
    await self._guarded(self._refresh())

  async def _on_export(self, _event) -> None:
    await self._guarded(self._export())

  async def _export(self) -> None:
    path = await self._call(self.state.export, self.export_format.value)
    self.status.object = f"exported `{path}`"

  async def _on_start(self, _event) -> None:
    await self._guarded(self._start())

  async def _start(self) -> None:
    kind = self.start_kind.value
    if kind == "ids":
      ids = self.ids_input.value.replace(",", "\n").split()
      await self._call(self.state.show_ids, ids)
    elif kind == "position":
      if self.ra_input.value is None or self.dec_input.value is None:
        raise ValueError("give ra and dec")
      await self._call(self.state.show_position, self.ra_input.value, self.dec_input.value)
    else:
      await self._call(self.state.show_random)
    await self._refresh(figures=True)

  # -- layout -----------------------------------------------------------------------------

  def layout(self) -> pn.viewable.Viewable:
    first = pn.Column("### First prompts", self.start_kind, self.ids_input,
                      pn.Row(self.ra_input, self.dec_input), self.start_button)
    rounds = pn.Column("### Rounds", pn.Row(self.next_button, self.undo_button), self.progress,
                       pn.Row(self.export_format, self.export_button), self.metrics)
    figures = pn.Column("### Scores", self.hist, "### Discovery", self.curve,
                        "### PCA map", self.pca)
    main = pn.Column(pn.Row(self.prev_page, self.page_text, self.next_page), self.status,
                     self.grid, sizing_mode="stretch_width")
    side = pn.Column(first, rounds, figures, width=340)
    return pn.Row(side, main, sizing_mode="stretch_width")


def build_app(data: AppData) -> pn.viewable.Viewable:
  """The page of one browser session (a fresh `AppState`; the user from basic auth if any)."""
  page = HitlPage(data, user=pn.state.user or None)
  if pn.state.curdoc is not None:
    pn.state.on_session_destroyed(lambda _ctx: page.close())
  return page.layout()
