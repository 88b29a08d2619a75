from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq

from lvm_jax.hitl import Session


def _drive(s, truth, rounds):
  """Prompts, then rounds of (next_round, label by truth); returns each round's ids."""
  pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
  s.label(np.r_[pos[:3], neg[:9]], [1] * 3 + [0] * 9, grade="B")
  shown = []
  for _ in range(rounds):
    ids = s.next_round()
    shown.append(ids)
    s.label(ids, truth[ids].astype(int), tags=["auto"])
  return shown


def test_reopening_restores_exactly(tmp_path, catalogue, small):
  x, truth, _, _ = catalogue
  path = tmp_path / "labels.sqlite"
  kw = dict(per_round=8, audit_fraction=0.25, seed=5, **small)
  a = Session(x, store=path, **kw)
  shown_a = _drive(a, truth, 2)
  a.undo()  # cancel the last round's labels: the log keeps them
  a.label(shown_a[-1][:2], "unsure", note="re-look")
  labels_a, scores_a, pending_a, round_a = a.labels(), a.scores(), a.pending, a.round
  a.close()

  b = Session(x, store=path, **kw)
  assert b.labels() == labels_a and b.pending == pending_a and b.round == round_a == 3
  np.testing.assert_allclose(b.scores(), scores_a, atol=1e-6)
  next_b = b.next_round()

  c = Session(x, **kw)  # the same actions in memory, without a restart
  shown_c = _drive(c, truth, 2)
  c.undo()
  c.label(shown_c[-1][:2], "unsure", note="re-look")
  for ia, ic in zip(shown_a, shown_c):
    np.testing.assert_array_equal(ia, ic)
  np.testing.assert_array_equal(next_b, c.next_round())


def test_killed_process_loses_no_label(tmp_path, catalogue):
  x, _, _, _ = catalogue
  np.savez(tmp_path / "emb.npz", embeddings=x, ids=np.arange(len(x)))
  store = tmp_path / "labels.sqlite"
  script = textwrap.dedent(f"""
      import os, signal
      from lvm_jax.hitl import Session
      s = Session({str(tmp_path / "emb.npz")!r}, store={str(store)!r}, user="kim",
                  hidden=16, fast_dims=8)
      for i in range(7):
        s.label(i, i % 2, grade="ABC"[i % 3], note=f"n{{i}}")
      s.undo()
      s.label(3, "unsure")
      os.kill(os.getpid(), signal.SIGKILL)
      """)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == -9, proc.stderr
  s = Session(tmp_path / "emb.npz", store=store, user="kim", hidden=16, fast_dims=8)
  expected = {i: str(i % 2) for i in range(6)}
  expected[3] = "unsure"
  assert s.labels() == expected
  assert len(s.store.events()) == 9


def test_several_users_and_consensus_export(tmp_path, catalogue, small):
  x, _, _, _ = catalogue
  path = tmp_path / "team.sqlite"
  ana = Session(x, store=path, user="ana", **small)
  bo = Session(x, store=path, user="bo", **small)
  cy = Session(x, store=path, user="cy", **small)
  ana.label([1, 2, 3], [1, 1, 0], grade="A", tags=[["arc"], [], []])
  bo.label([1, 2, 3], [1, 0, 0], grade=["B", "B", None])
  cy.label([1, 3], [0, 0], note="hmm")
  ana.refresh()
  assert ana.labels() == {1: "1", 2: "unsure", 3: "0"}
  assert ana.labels("bo") == {1: "1", 2: "0", 3: "0"}
  ana.export(tmp_path / "c.parquet")
  t = pq.read_table(tmp_path / "c.parquet").to_pydict()
  assert t["id"] == [1, 2, 3] and t["label"] == [1, -1, 0]
  assert t["user"][0] == "ana,bo,cy" and t["tags"][0] == "arc"
  ana.export(tmp_path / "all.parquet", users="all")
  assert pq.read_table(tmp_path / "all.parquet").num_rows == 8
  ana.export(tmp_path / "bo.parquet", users="bo")
  assert pq.read_table(tmp_path / "bo.parquet").to_pydict()["label"] == [1, 0, 0]
