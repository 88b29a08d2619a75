"""The label state replayed from the log: latest label wins, undos cancel, users vote.

Label values are stored as text: '1' (positive), '0' (negative), 'unsure'.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Iterable

import numpy as np

from lvm_jax.hitl.store import Event

POSITIVE, NEGATIVE, UNSURE = "1", "0", "unsure"
ROUTES = ("prompt", "recommended", "audit")

_ALIASES = {
    "1": POSITIVE, "positive": POSITIVE, "yes": POSITIVE, "true": POSITIVE,
    "0": NEGATIVE, "negative": NEGATIVE, "no": NEGATIVE, "false": NEGATIVE,
    "unsure": UNSURE, "-1": UNSURE, "none": UNSURE, "?": UNSURE,
}


def normalise_label(value) -> str:
  """1/True/'positive' -> '1'; 0/False/'negative' -> '0'; 'unsure'/None/-1 -> 'unsure'."""
  if isinstance(value, (bool, np.bool_)):
    key = "1" if value else "0"
  elif isinstance(value, (int, np.integer)) or (
      isinstance(value, (float, np.floating)) and float(value).is_integer()):
    key = str(int(value))
  else:
    key = str(value).strip().lower()
  if key not in _ALIASES:
    raise ValueError(f"label must be 1, 0 or 'unsure', got {value!r}")
  return _ALIASES[key]


@dataclasses.dataclass(frozen=True)
class ObjectLabel:
  """The effective label of one object (for one user, or the consensus of several).

  Attributes:
    label: '1', '0' or 'unsure'.
    event: the latest label event behind it (its route, round, time, score, grade, note).
    users: who labelled it.
    grade, tags, note: merged over users for a consensus.
    first_seq: sequence number of the first label this object got (labelling order).
  """
  label: str
  event: Event
  users: tuple[str, ...]
  grade: str | None
  tags: tuple[str, ...]
  note: str | None
  first_seq: int


def active_labels(events: Iterable[Event]) -> list[Event]:
  """Label events not cancelled by an undo, in order."""
  events = list(events)
  undone = {e.target for e in events if e.kind == "undo"}
  return [e for e in events if e.kind == "label" and e.action not in undone]


def latest_by_user(events: Iterable[Event]) -> dict[tuple[str, str], Event]:
  """{(object_id, user): latest active label event}."""
  out = {}
  for e in active_labels(events):
    out[(e.object_id, e.user)] = e
  return out


def _first_seq(events: Iterable[Event]) -> dict[str, int]:
  out = {}
  for e in active_labels(events):
    out.setdefault(e.object_id, e.seq)
  return out


def user_labels(events: list[Event], user: str) -> dict[str, ObjectLabel]:
  """{object_id: ObjectLabel} of one user's latest labels."""
  first = _first_seq(e for e in events if e.user == user)
  return {oid: ObjectLabel(e.label, e, (user,), e.grade, e.tags, e.note, first[oid])
          for (oid, u), e in latest_by_user(events).items() if u == user}


def consensus_labels(events: list[Event]) -> dict[str, ObjectLabel]:
  """{object_id: ObjectLabel} by majority over users' latest labels; ties give 'unsure'.

  The grade is the most common grade (ties: the latest), tags the union, notes joined
  with the user's name.
  """
  votes = collections.defaultdict(list)
  for (oid, _), e in latest_by_user(events).items():
    votes[oid].append(e)
  first = _first_seq(events)
  out = {}
  for oid, evs in votes.items():
    evs.sort(key=lambda e: e.seq)
    counts = collections.Counter(e.label for e in evs).most_common()
    label = UNSURE if len(counts) > 1 and counts[0][1] == counts[1][1] else counts[0][0]
    grades = collections.Counter(e.grade for e in evs if e.grade)
    grade = max(grades, key=lambda g: (grades[g], max(e.seq for e in evs if e.grade == g)),
                default=None)
    tags = tuple(sorted({t for e in evs for t in e.tags}))
    notes = [f"{e.user}: {e.note}" if len(evs) > 1 else e.note for e in evs if e.note]
    out[oid] = ObjectLabel(label, evs[-1], tuple(e.user for e in evs), grade, tags,
                           "; ".join(notes) or None, first[oid])
  return out


def all_user_labels(events: list[Event]) -> list[ObjectLabel]:
  """Every user's latest label of every object, one entry per (object, user)."""
  users = sorted({e.user for e in events if e.kind == "label"})
  return [lab for u in users for lab in user_labels(events, u).values()]
