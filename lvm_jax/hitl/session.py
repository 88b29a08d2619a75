"""A human-in-the-loop labelling session over frozen galaxy embeddings (Fu et al. 2024).

    s = Session("embeddings.parquet", store="lenses.sqlite", user="ana", truth=None)
    s.label([1234, 5678], 1, grade="A")          # the initial prompts: round 1
    ids = s.next_round()                          # train the MLP, recommend per_round ids
    s.label(ids[:3], [1, 0, "unsure"], tags=[["arc"], [], ["artefact"]])
    s.undo()                                      # cancels the last label() call
    s.export("lenses.fits")

Rounds: labels given before the first `next_round()` are round 1; `next_round()` trains on
all labels, opens the next round and recommends objects whose labels will belong to it.
Every label is committed to the store when given; the session is a replay of that log, so
reopening the store restores it exactly (same recommendations for the same seed).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax import provenance as provenance_lib
from lvm_jax.hitl import export as export_lib
from lvm_jax.hitl import labels as labels_lib
from lvm_jax.hitl import metrics as metrics_lib
from lvm_jax.hitl import model as model_lib
from lvm_jax.hitl.catalogue import load_catalogue
from lvm_jax.hitl.features import fit_feature_space
from lvm_jax.hitl.store import LabelStore
from lvm_jax.hitl.strategies import SelectionContext, get_strategy


class Session:
  """Label, train, recommend, repeat; the state lives in a SQLite label log.

  Args:
    embeddings: (N, D) array, or a .parquet / .npy / .npz path (see `catalogue.py`).
    ids: (N,) object ids; row numbers for a bare array by default.
    alpha: the paper's threshold on the latest round's positives/negatives.
    per_round: objects recommended per round (audit objects included).
    hidden: hidden units of the MLP (2048 in the paper).
    strategy: name in `strategies.STRATEGIES` ("paper", "boundary", "similar", "random").
    seed: seeds the MLP initialisation, the PCA sample and the random picks of each round.
    store: SQLite path of the label log (None: in memory).
    user: who labels in this session.
    extra_features: (N, k) extra input columns, or names of catalogue columns.
    audit_fraction: share of each round drawn uniformly at random (route "audit"), for
      unbiased purity/completeness estimates without truth.
    truth: (N,) 0/1 array or a catalogue column name; enables metrics after each round.
    ra, dec: (N,) degrees, overriding the file's columns.
    fast: classify the first `fast_dims` principal components and score in bfloat16;
      False keeps the exact D -> hidden MLP (all D components, float32).
    steps, learning_rate: full-batch Adam schedule of each round's training.
    train_on: "consensus" (majority over all users of the store) or "user" (this user only).
  """

  def __init__(self, embeddings, ids=None, alpha: float = 0.5, per_round: int = 10,
               hidden: int = 2048, strategy: str = "paper", seed: int = 0, store=None,
               user: str = "default", extra_features=None, audit_fraction: float = 0.0,
               truth=None, *, ra=None, dec=None, fast: bool = True, fast_dims: int = 128,
               steps: int = 100, learning_rate: float = 2e-3, train_on: str = "consensus"):
    self.catalogue = load_catalogue(embeddings, ids, ra, dec)
    self.alpha, self.per_round, self.hidden = float(alpha), int(per_round), int(hidden)
    self.strategy, self.seed, self.user = strategy, int(seed), user
    self.audit_fraction, self.fast = float(audit_fraction), bool(fast)
    self.fast_dims = int(fast_dims) if fast else None
    self.steps, self.learning_rate, self.train_on = int(steps), float(learning_rate), train_on
    get_strategy(strategy)
    if not 0.0 <= self.audit_fraction <= 1.0:
      raise ValueError("audit_fraction must lie in [0, 1]")
    if train_on not in ("consensus", "user"):
      raise ValueError(f"train_on must be 'consensus' or 'user', got {train_on!r}")
    cols = self.catalogue.columns
    self.truth = None if truth is None else np.asarray(
        cols[truth] if isinstance(truth, str) else truth).astype(bool)
    if isinstance(extra_features, (list, tuple)) and extra_features and isinstance(
        extra_features[0], str):
      extra_features = np.stack([cols[c] for c in extra_features], axis=1)
    emb = self.catalogue.embeddings
    self.feature_space = fit_feature_space(emb, extra_features, dims=self.fast_dims, seed=seed)
    self.inputs = self.feature_space.transform(emb, extra_features)
    self._scorer = model_lib.BlockScorer(self.inputs, jnp.bfloat16 if fast else jnp.float32)
    self._keys = [str(i) for i in self.catalogue.ids.tolist()]
    self._row = {k: r for r, k in enumerate(self._keys)}
    self.store = LabelStore(store)
    self._check_meta()
    self.history: list[dict[str, Any]] = []
    self._params = None
    self._scores = np.full(self.catalogue.n, np.nan, np.float32)
    self._events = self.store.events()
    self._restore()

  # -- state --------------------------------------------------------------------------------

  @property
  def round(self) -> int:
    """The round that labels given now belong to (1 = the initial prompts)."""
    rounds = [e.round for e in self._events if e.kind == "round"]
    return max(rounds, default=1)

  @property
  def pending(self) -> dict[Any, str]:
    """{id: route} recommended for the current round."""
    last = self._last_round_event()
    if last is None:
      return {}
    return {self.catalogue.ids[self._row[k]].item(): r
            for k, r in zip(last.payload["ids"], last.payload["routes"])}

  def labels(self, users: str = "consensus") -> dict[Any, str]:
    """{id: '1' | '0' | 'unsure'}: the effective labels ("consensus", "all" users' latest
    merged by consensus, or one user's)."""
    return {self.catalogue.ids[self._row[k]].item(): lab.label
            for k, lab in self._effective(users).items()}

  def scores(self) -> np.ndarray:
    """(N,) probability of the positive class from the latest trained MLP (NaN before)."""
    return self._scores.copy()

  def refresh(self) -> None:
    """Reads events other users (or processes) added to the store."""
    last = self._events[-1].seq if self._events else 0
    self._events.extend(self.store.events(since=last))

  def close(self) -> None:
    self.store.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # -- labelling ----------------------------------------------------------------------------

  def label(self, ids, labels, *, grade=None, tags=None, note=None, route: str | None = None):
    """Labels objects: 1 (positive), 0 (negative) or "unsure"; committed at once.

    Args:
      ids: one id or a sequence of ids.
      labels: one label for all, or one per id.
      grade: e.g. a lens grade "A"/"B"/"C"; one for all or one per id.
      tags: a tag or list of tags for all, or a list of tag lists (one per id).
      note: free text; one for all or one per id.
      route: "prompt", "recommended" or "audit"; None takes the route under which the
        object was recommended this round, else "prompt".
    """
    ids = _as_list(ids)
    n = len(ids)
    labs = [labels_lib.normalise_label(v) for v in _per_item(labels, n)]
    grades, notes = _per_item(grade, n), _per_item(note, n)
    tag_lists = _per_item_tags(tags, n)
    pending = {str(k): r for k, r in self.pending.items()}
    rows = []
    for i, oid in enumerate(ids):
      key = self._key(oid)
      r = route or pending.get(key, "prompt")
      if r not in labels_lib.ROUTES:
        raise ValueError(f"route must be one of {labels_lib.ROUTES}, got {r!r}")
      score = float(self._scores[self._row[key]])
      rows.append(dict(kind="label", object_id=key, label=labs[i],
                       grade=None if grades[i] is None else str(grades[i]),
                       tags=[str(t) for t in tag_lists[i]],
                       note=None if notes[i] is None else str(notes[i]), user=self.user,
                       route=r, round=self.round, score=None if np.isnan(score) else score))
    self._events.extend(self.store.append(rows))

  def undo(self) -> list[Any]:
    """Cancels this user's latest label() call not yet undone; returns its ids.

    The cancelled labels stay in the log, as does the undo; earlier labels of the same
    objects take effect again.
    """
    self.refresh()
    undone = {e.target for e in self._events if e.kind == "undo"}
    mine = [e for e in self._events if e.kind == "label" and e.user == self.user
            and e.action not in undone]
    if not mine:
      return []
    action = mine[-1].action
    self._events.extend(self.store.append(
        [dict(kind="undo", user=self.user, round=self.round, target=action)]))
    return [self.catalogue.ids[self._row[e.object_id]].item() for e in mine
            if e.action == action]

  # -- rounds -------------------------------------------------------------------------------

  def next_round(self) -> np.ndarray:
    """Trains on the current labels and recommends `per_round` unlabelled objects.

    Returns:
      (per_round,) ids to show next (fewer when the catalogue runs out); `pending` gives
      each one's route ("recommended" or "audit").
    """
    self.refresh()
    finished = self.round
    self._train(self._events, finished)
    rows, routes = self._select(finished)
    payload = {"ids": [self._keys[r] for r in rows], "routes": routes,
               "strategy": self.strategy, "alpha": self.alpha}
    self._events.extend(self.store.append(
        [dict(kind="round", user=self.user, round=finished + 1, payload=payload)]))
    self._record_metrics(finished)
    return self.catalogue.ids[rows]

  def _train(self, events, finished: int) -> None:
    effective = self._effective_from(events)
    known = sorted((self._row[k], lab.label) for k, lab in effective.items()
                   if lab.label != labels_lib.UNSURE)
    if not known:
      self._params = None
      self._scores = np.full(self.catalogue.n, np.nan, np.float32)
      return
    rows = np.array([r for r, _ in known])
    y = np.array([lab == labels_lib.POSITIVE for _, lab in known], np.float32)
    key = jax.random.fold_in(jax.random.key(self.seed), finished)
    self._params = model_lib.train(self.inputs, rows, y, key, hidden=self.hidden,
                                   steps=self.steps, learning_rate=self.learning_rate)
    self._scores = self._scorer(self._params)

  def _select(self, finished: int) -> tuple[np.ndarray, list[str]]:
    """Rows to show in round finished + 1 and their routes (strategy picks, then audit)."""
    effective = self._effective("consensus")
    taken = np.zeros(self.catalogue.n, bool)
    taken[[self._row[k] for k in effective]] = True
    candidates = np.flatnonzero(~taken)
    rng = np.random.default_rng([self.seed, finished])
    n_audit = 0
    if self.audit_fraction > 0:
      n_audit = min(self.per_round, max(1, int(round(self.per_round * self.audit_fraction))))
    p, n = self._latest_round_counts()
    pos, neg = (np.array(sorted(self._row[k] for k, lab in effective.items() if lab.label == c),
                         np.int64) for c in (labels_lib.POSITIVE, labels_lib.NEGATIVE))
    ctx = SelectionContext(scores=np.nan_to_num(self._scores, nan=0.5), candidates=candidates,
                           count=self.per_round - n_audit, features=self.inputs,
                           latest_positives=p, latest_negatives=n, alpha=self.alpha, rng=rng,
                           trained=self._params is not None, positive_rows=pos, negative_rows=neg)
    picks = np.asarray(get_strategy(self.strategy)(ctx), np.int64)
    left = np.setdiff1d(candidates, picks, assume_unique=True)
    audit = np.sort(rng.choice(left, size=min(n_audit, len(left)), replace=False))
    rows = np.concatenate([picks, audit]).astype(np.int64)
    return rows, ["recommended"] * len(picks) + ["audit"] * len(audit)

  def _latest_round_counts(self) -> tuple[int, int]:
    """(P, N): positives and negatives whose latest label came in the latest labelled round."""
    effective = self._effective_from(self._events)
    if not effective:
      return 0, 0
    last = max(lab.event.round for lab in effective.values())
    latest = [lab.label for lab in effective.values() if lab.event.round == last]
    return latest.count(labels_lib.POSITIVE), latest.count(labels_lib.NEGATIVE)

  def _restore(self) -> None:
    """Re-trains the model of the latest round from the labels it was trained on."""
    last = self._last_round_event()
    if last is not None:
      self._train([e for e in self._events if e.seq < last.seq], last.round - 1)
      self._record_metrics(last.round - 1)

  def _last_round_event(self):
    rounds = [e for e in self._events if e.kind == "round"]
    return rounds[-1] if rounds else None

  # -- metrics ------------------------------------------------------------------------------

  def _record_metrics(self, finished: int) -> None:
    """Appends AUPR, AUC, purity and completeness (score > 0.5) to `history` (needs truth)."""
    if self.truth is None:
      return
    effective = self._effective("consensus")
    found = sum(bool(self.truth[self._row[k]]) for k in effective)
    entry = {"round": finished, "labels": len(effective), "positives_found": int(found)}
    if self._params is not None:
      s = self._scores
      entry["aupr"] = metrics_lib.average_precision(self.truth, s)
      entry["auc"] = metrics_lib.roc_auc(self.truth, s)
      entry["purity"], entry["completeness"] = metrics_lib.purity_completeness(self.truth, s)
    self.history.append(entry)

  def discovery_curve(self) -> np.ndarray:
    """(n_labelled,) positives found after each labelled object, in labelling order.

    Positives are true positives when `truth` is known, else objects labelled 1.
    """
    effective = sorted(self._effective("consensus").items(), key=lambda kv: kv[1].first_seq)
    if self.truth is not None:
      hits = [self.truth[self._row[k]] for k, _ in effective]
    else:
      hits = [lab.label == labels_lib.POSITIVE for _, lab in effective]
    return metrics_lib.discovery_curve(np.asarray(hits, bool))

  def audit_report(self, threshold: float = 0.5) -> dict[str, float]:
    """Purity and completeness at score > threshold estimated from the audit labels, with
    95% Wilson intervals (scores as they were when each object was shown)."""
    audited = [lab for lab in self._effective("consensus").values()
               if lab.event.route == "audit" and lab.label != labels_lib.UNSURE
               and lab.event.score is not None]
    y = np.array([lab.label == labels_lib.POSITIVE for lab in audited], bool)
    s = np.array([lab.event.score for lab in audited], np.float64)
    return metrics_lib.audit_estimates(y, s, threshold)

  # -- export -------------------------------------------------------------------------------

  def export(self, path, users: str = "consensus") -> str:
    """Writes the labelled sample; the format follows the extension (.csv, .parquet, .fits,
    .vot/.xml). `users`: "consensus", "all" (one row per object and user) or a user name."""
    self.refresh()
    if users == "all":
      entries = labels_lib.all_user_labels(self._events)
    else:
      entries = sorted(self._effective(users).values(), key=lambda lab: lab.first_seq)
    rows = np.array([self._row[lab.event.object_id] for lab in entries], np.int64)
    label_code = {labels_lib.POSITIVE: 1, labels_lib.NEGATIVE: 0, labels_lib.UNSURE: -1}
    cols: dict[str, np.ndarray] = {"id": self.catalogue.ids[rows]}
    if self.catalogue.ra is not None:
      cols["ra"], cols["dec"] = self.catalogue.ra[rows], self.catalogue.dec[rows]
    text = lambda vals: np.array([v or "" for v in vals], dtype=str)
    cols.update({
        "label": np.array([label_code[lab.label] for lab in entries], np.int16),
        "label_name": text([{"1": "positive", "0": "negative"}.get(lab.label, "unsure")
                            for lab in entries]),
        "grade": text([lab.grade for lab in entries]),
        "tags": text([",".join(lab.tags) for lab in entries]),
        "note": text([lab.note for lab in entries]),
        "user": text([",".join(lab.users) for lab in entries]),
        "route": text([lab.event.route for lab in entries]),
        "round": np.array([lab.event.round for lab in entries], np.int32),
        "time": text([lab.event.time for lab in entries]),
        "score": self._scores[rows].astype(np.float64),
        "score_at_label": np.array([np.nan if lab.event.score is None else lab.event.score
                                    for lab in entries], np.float64),
    })
    if self.truth is not None:
      cols["truth"] = self.truth[rows].astype(np.int16)
    return export_lib.write_table(path, cols, self.provenance(users=users))

  def provenance(self, **extra) -> dict[str, Any]:
    """Code version, git SHA and the session's settings."""
    return provenance_lib.provenance(
        alpha=self.alpha, strategy=self.strategy, seed=self.seed, per_round=self.per_round,
        hidden=self.hidden, fast=self.fast, fast_dims=self.fast_dims, steps=self.steps,
        learning_rate=self.learning_rate, audit_fraction=self.audit_fraction,
        embedding_source=self.catalogue.source, n_objects=self.catalogue.n,
        embedding_dim=int(self.catalogue.embeddings.shape[1]), store=self.store.path,
        round=self.round, **extra)

  # -- helpers ------------------------------------------------------------------------------

  def _effective(self, users: str):
    return self._effective_from(self._events, users)

  def _effective_from(self, events, users: str | None = None):
    users = users or ("consensus" if self.train_on == "consensus" else self.user)
    if users in ("consensus", "all"):
      return labels_lib.consensus_labels(events)
    return labels_lib.user_labels(events, users)

  def _key(self, oid) -> str:
    if (key := str(oid.item() if hasattr(oid, "item") else oid)) not in self._row:
      raise KeyError(f"unknown object id {oid!r}")
    return key

  def _check_meta(self) -> None:
    meta = {"n_objects": self.catalogue.n, "id_dtype": self.catalogue.ids.dtype.kind,
            "embedding_source": self.catalogue.source}
    self.store.set_meta(meta)
    stored = self.store.meta()
    if int(stored["n_objects"]) != self.catalogue.n:
      raise ValueError(f"store {self.store.path} holds labels of {stored['n_objects']} "
                       f"objects, not {self.catalogue.n}")


def _as_list(ids) -> list:
  if isinstance(ids, (str, bytes)) or np.ndim(ids) == 0:
    return [ids]
  return list(np.asarray(ids).tolist()) if isinstance(ids, np.ndarray) else list(ids)


def _per_item(value, n: int) -> list:
  if value is None or isinstance(value, (str, bytes)) or np.ndim(value) == 0:
    return [value] * n
  value = list(value)
  if len(value) != n:
    raise ValueError(f"expected one value per id ({n}), got {len(value)}")
  return value


def _per_item_tags(tags, n: int) -> list[Sequence[str]]:
  if tags is None:
    return [()] * n
  if isinstance(tags, str):
    return [(tags,)] * n
  tags = list(tags)
  if tags and all(isinstance(t, (list, tuple)) for t in tags):
    if len(tags) != n:
      raise ValueError(f"expected one tag list per id ({n}), got {len(tags)}")
    return tags
  return [tuple(tags)] * n
