"""One browser session's state, without any web code: what is shown, labelling, rounds, export.

    state = AppState(AppData(config), user="ana")
    state.show_random()                    # the first prompts: a seeded random sample
    state.label("9010_1_2", 1)             # a card (and its near-duplicates on the list)
    ids = state.next_round()               # == Session.next_round() for the same store/seed
    state.export()                         # -> out/hitl_ana_<time>.parquet

All labelling goes through `Session`, so the app and the notebook API share one label log.
The list being shown (`shown`) holds catalogue rows collapsed by near-duplicate group; it is
paged `per_page` cards at a time.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, Sequence

import numpy as np

from lvm_jax.hitl.app import sky
from lvm_jax.hitl.app.data import AppData
from lvm_jax.hitl.session import Session

LABELS = {"1": 1, "0": 0, "unsure": "unsure"}


class AppState:
  """Wraps a `Session` (same store, seed and settings for every browser session).

  Attributes:
    session: the `Session` core.
    mode: what is shown: "prompts", "round", "similar" or "ids".
    shown: [(row, [rows of its near-duplicate group on the list])], in display order.
    page: the page of `shown` on screen (0-based).
    round_ids: the ids the latest `next_round()` returned (as the Session gave them).
    message: a line for the status bar.
  """

  def __init__(self, data: AppData, user: str | None = None):
    self.data = data
    self.session = Session(user=user or data.config.user, **data.session_kwargs())
    self.mode = "prompts"
    self.shown: list[tuple[int, list[int]]] = []
    self.page = 0
    self.round_ids: list[Any] = []
    self.message = ""
    self.anchor: str | None = None
    pending = list(self.session.pending)
    if pending:  # a reopened store: continue with the open round's recommendations
      self.round_ids = pending
      self._show([data.row[str(i)] for i in pending], "round")
    else:
      self.show_random()

  # -- what is shown ------------------------------------------------------------------------

  @property
  def per_page(self) -> int:
    return self.data.config.per_page

  @property
  def pages(self) -> int:
    return max(1, -(-len(self.shown) // self.per_page))

  def _show(self, rows: Sequence[int], mode: str) -> None:
    self.shown = sky.collapse([int(r) for r in rows], self.data.groups)
    self.mode, self.page = mode, 0

  def show_random(self, count: int | None = None) -> list[str]:
    """First prompts: a random sample (seeded by the session seed) of unlabelled objects."""
    labelled = {str(k) for k in self.session.labels()}
    rng = np.random.default_rng(self.data.config.seed)
    order = rng.permutation(self.data.n)
    rows = [r for r in order if self.data.keys[r] not in labelled][:count or self.per_page]
    self._show(rows, "prompts")
    return self.visible_ids()

  def show_ids(self, ids: Sequence[Any]) -> list[str]:
    """First prompts from an id list; unknown ids are reported in `message`."""
    keys = [str(i).strip() for i in ids if str(i).strip()]
    unknown = [k for k in keys if k not in self.data.row]
    self._show([self.data.row[k] for k in keys if k in self.data.row], "ids")
    self.message = f"unknown ids: {', '.join(unknown[:5])}" if unknown else ""
    return self.visible_ids()

  def show_position(self, ra: float, dec: float, count: int | None = None) -> list[str]:
    """First prompts: the objects nearest to (ra, dec) deg, nearest first."""
    cat = self.data.catalogue
    if cat.ra is None:
      raise ValueError("the catalogue has no ra/dec")
    self._show(sky.nearest_rows(cat.ra, cat.dec, ra, dec, count or self.per_page), "prompts")
    return self.visible_ids()

  def show_similar(self, object_id: Any, k: int | None = None) -> list[str]:
    """"More like this": the k nearest objects by cosine similarity (`lvm_jax.export.search`)."""
    rows = self.data.index().search_by_id(str(object_id), k or self.per_page)
    self._show([self.data.row[r["id"]] for r in rows], "similar")
    self.anchor = str(object_id)
    return self.visible_ids()

  def set_page(self, page: int) -> None:
    self.page = int(np.clip(page, 0, self.pages - 1))

  def visible(self) -> list[tuple[int, list[int]]]:
    start = self.page * self.per_page
    return self.shown[start:start + self.per_page]

  def visible_ids(self) -> list[str]:
    return [self.data.keys[r] for r, _ in self.visible()]

  # -- labelling ------------------------------------------------------------------------------

  def label(self, object_id: Any, value: Any) -> list[str]:
    """Labels a shown card and the near-duplicates it stands for; returns their ids.

    `value`: 1 / "1" / "yes", 0 / "0" / "no", or "unsure" / "u".
    """
    value = {"yes": 1, "no": 0, "u": "unsure"}.get(value, value)
    value = LABELS.get(str(value), value)
    key = str(object_id)
    members = next((m for r, m in self.shown if self.data.keys[r] == key),
                   [self.data.row[key]])
    ids = [self.session.catalogue.ids[r].item() for r in members]
    self.session.label(ids, value)
    self.message = f"labelled {key}: {value}"
    return [str(i) for i in ids]

  def undo(self) -> list[str]:
    ids = self.session.undo()
    self.message = f"undone: {', '.join(map(str, ids))}" if ids else "nothing to undo"
    return [str(i) for i in ids]

  def labels(self) -> dict[str, str]:
    return {str(k): v for k, v in self.session.labels().items()}

  # -- rounds ---------------------------------------------------------------------------------

  def next_round(self) -> list[Any]:
    """`Session.next_round()`; shows and returns the recommended ids."""
    ids = self.session.next_round()
    self.round_ids = ids.tolist()
    self._show([self.data.row[str(i)] for i in self.round_ids], "round")
    self.message = f"round {self.session.round}: {len(self.round_ids)} recommended"
    return list(self.round_ids)

  def metrics(self) -> dict[str, Any]:
    """The latest `Session.history` entry (needs truth), else label counts."""
    labels = list(self.labels().values())
    out: dict[str, Any] = {"round": self.session.round, "labelled": len(labels),
                           "positives": labels.count("1"), "negatives": labels.count("0"),
                           "unsure": labels.count("unsure")}
    if self.session.history:
      out.update({k: v for k, v in self.session.history[-1].items() if k != "round"})
    return out

  # -- export ---------------------------------------------------------------------------------

  def export(self, fmt: str | None = None) -> pathlib.Path:
    """Writes the session's labelled sample to the configured output folder; returns the path.

    The file name is made here (user, UTC time), never taken from the browser.
    """
    fmt = fmt or self.data.config.export_format
    ext = {"csv": ".csv", "parquet": ".parquet", "fits": ".fits", "votable": ".vot"}[fmt]
    out = pathlib.Path(self.data.config.out)
    out.mkdir(parents=True, exist_ok=True)
    user = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.session.user)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"{time.time() % 1:.3f}"[1:]
    path = out / f"hitl_{user}_{stamp.replace('.', '_')}{ext}"
    self.session.export(path)
    self.message = f"exported {path}"
    return path

  # -- cards ----------------------------------------------------------------------------------

  def cards(self) -> list[dict[str, Any]]:
    """The visible cards as plain dicts (what the browser grid renders)."""
    labels = self.labels()
    pending = {str(k): v for k, v in self.session.pending.items()} if self.mode == "round" \
        else {}
    scores = self.session.scores()
    out = []
    for row, members in self.visible():
      key = self.data.keys[row]
      values = self.data.card_values(row)
      score = float(scores[row])
      out.append({
          "id": key, "src": self.data.thumbnails.data_url(key), "label": labels.get(key, ""),
          "route": pending.get(key, ""), "score": None if np.isnan(score) else round(score, 3),
          "duplicates": [self.data.keys[m] for m in members[1:]], "values": values,
          "url": sky.viewer_url(values["ra"], values["dec"])
                 if values.get("ra") is not None and values.get("dec") is not None else ""})
    return out
