"""An append-only label log in an embedded SQLite database (WAL mode).

Every label, undo and round is one row of `events`, committed when it happens (synchronous =
FULL), so a process killed between two labels loses nothing. Nothing is ever updated or
deleted: an undo is an event naming the action it cancels, and the state of a session is a
replay of the log (see `labels.py`). Several users, even in several processes, may write one
store; `BEGIN IMMEDIATE` serialises the writers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from typing import Any, Iterable

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,          -- 'label' | 'undo' | 'round'
  action INTEGER NOT NULL,     -- one label() / undo() / next_round() call
  object_id TEXT,              -- label: the object
  label TEXT,                  -- label: '1' | '0' | 'unsure'
  grade TEXT,
  tags TEXT,                   -- JSON list of strings
  note TEXT,
  user TEXT NOT NULL,
  route TEXT,                  -- label: 'prompt' | 'recommended' | 'audit'
  round INTEGER NOT NULL,
  time TEXT NOT NULL,          -- ISO 8601 UTC
  score REAL,                  -- label: the object's score when labelled
  target INTEGER,              -- undo: the action it cancels
  payload TEXT                 -- round: JSON {ids, routes, strategy, alpha}
);
CREATE INDEX IF NOT EXISTS events_object ON events (object_id);
"""

_FIELDS = ("seq", "kind", "action", "object_id", "label", "grade", "tags", "note", "user",
           "route", "round", "time", "score", "target", "payload")


@dataclasses.dataclass(frozen=True)
class Event:
  """One row of the log (see the schema above)."""
  seq: int
  kind: str
  action: int
  object_id: str | None
  label: str | None
  grade: str | None
  tags: tuple[str, ...]
  note: str | None
  user: str
  route: str | None
  round: int
  time: str
  score: float | None
  target: int | None
  payload: dict[str, Any] | None


def utc_now() -> str:
  t = time.time()
  return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class LabelStore:
  """The label log of one catalogue; `path=None` keeps it in memory.

  Args:
    path: the SQLite file, created if absent.
  """

  def __init__(self, path: str | os.PathLike | None = None):
    self.path = None if path is None else os.fspath(path)
    self._db = sqlite3.connect(self.path or ":memory:", isolation_level=None, timeout=30.0)
    if self.path:
      self._db.execute("PRAGMA journal_mode=WAL")
    self._db.execute("PRAGMA synchronous=FULL")
    self._db.executescript(_SCHEMA)
    self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                     (SCHEMA_VERSION,))

  def close(self) -> None:
    self._db.close()

  def meta(self) -> dict[str, str]:
    return dict(self._db.execute("SELECT key, value FROM meta"))

  def touch(self, values: dict[str, Any]) -> None:
    """Records values, replacing earlier ones (a write that proves the store is writable)."""
    with self._transaction():
      self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, str(v)) for k, v in values.items()])

  def set_meta(self, values: dict[str, Any]) -> None:
    """Records values once: keys already present keep their first value."""
    with self._transaction():
      self._db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                           [(k, str(v)) for k, v in values.items()])

  def append(self, rows: Iterable[dict[str, Any]]) -> list[Event]:
    """Commits `rows` (dicts of event fields, without seq/action/time) as one action.

    Returns the stored events, with their sequence numbers.
    """
    rows = list(rows)
    now = utc_now()
    with self._transaction():
      action = self._db.execute("SELECT COALESCE(MAX(action), 0) + 1 FROM events").fetchone()[0]
      seqs = []
      for r in rows:
        cur = self._db.execute(
            "INSERT INTO events (kind, action, object_id, label, grade, tags, note, user, route,"
            " round, time, score, target, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (r["kind"], action, r.get("object_id"), r.get("label"), r.get("grade"),
             json.dumps(list(r.get("tags") or ())), r.get("note"), r["user"], r.get("route"),
             int(r["round"]), now, r.get("score"), r.get("target"),
             None if r.get("payload") is None else json.dumps(r["payload"])))
        seqs.append(cur.lastrowid)
    return [e for e in self.events(since=min(seqs) - 1) if e.seq in set(seqs)] if seqs else []

  def events(self, since: int = 0) -> list[Event]:
    """All events with seq > `since`, in order."""
    cur = self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM events WHERE seq > ? ORDER BY seq",
                           (since,))
    return [_to_event(row) for row in cur]

  def _transaction(self):
    return _Transaction(self._db)


class _Transaction:
  """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

  def __init__(self, db: sqlite3.Connection):
    self._db = db

  def __enter__(self):
    self._db.execute("BEGIN IMMEDIATE")

  def __exit__(self, exc_type, exc, tb):
    self._db.execute("ROLLBACK" if exc_type else "COMMIT")
    return False


def _to_event(row) -> Event:
  d = dict(zip(_FIELDS, row))
  d["tags"] = tuple(json.loads(d["tags"])) if d["tags"] else ()
  d["payload"] = json.loads(d["payload"]) if d["payload"] else None
  return Event(**d)
