"""Killing a run (SIGKILL) right after its mid-way checkpoint and resuming gives the same run.

The same parameters, and the same logged history: the log window that was open at the
checkpoint (logging every 2 steps, checkpoint at step 3) is saved with it, so the line at step 4
averages steps 3 and 4 in both runs.
"""

import subprocess

import jax
import numpy as np

from lvm_jax import checkpoint
from lvm_jax.train import trainer, writers


def _history(workdir):
  """{step: {metric: value}} of the train log, without the timing (img_per_s)."""
  return {r["step"]: {k: v for k, v in r.items() if k not in ("step", "kind", "img_per_s")}
          for r in writers.read_log(workdir, "train")}


def test_kill_and_resume_matches_straight_run(straight_run, make_config, train_argv, child_env,
                                              repo, tmp_path):
  straight_dir, straight = straight_run
  assert straight["step"] == 6
  # A child process trains to step 3, waits for that checkpoint, then SIGKILLs itself.
  child = subprocess.run(train_argv(tmp_path, "eval.evaluators=[]", "log.every_steps=2",
                                    "debug.kill_after_checkpoint_step=3"),
                         env=child_env(8), cwd=repo, capture_output=True, text=True, timeout=300)
  assert child.returncode == -9, child.stderr[-3000:]
  assert checkpoint.latest_step(tmp_path / "checkpoints") == 3
  assert checkpoint.verify(tmp_path / "checkpoints") == {3: []}  # sealed before the kill
  # The dead child's workdir lock is taken over; log.every_steps may change on resume.
  resumed = trainer.train_and_evaluate(make_config("eval.evaluators=[]", "log.every_steps=2"),
                                       tmp_path)
  assert resumed["start_step"] == 3 and resumed["step"] == 6

  # The straight run logs every step: its 2-step windows are the means of consecutive pairs.
  a, b = _history(straight_dir), _history(tmp_path)
  assert sorted(a) == [1, 2, 3, 4, 5, 6] and sorted(b) == [2, 4, 6]
  for s in b:
    assert sorted(b[s]) == sorted(a[s])
    for k in b[s]:
      want = np.mean(np.float32([a[s - 1][k], a[s][k]]))
      np.testing.assert_allclose(b[s][k], want, rtol=1e-6, err_msg=f"step {s} {k}")
  pa = checkpoint.restore(straight_dir / "checkpoints", 6)["params"]
  pb = checkpoint.restore(tmp_path / "checkpoints", 6)["params"]
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), pa, pb)
  it = checkpoint.read_json(tmp_path / "checkpoints", "data_iter")
  assert it["next_batch"] == 6

  # A truncated newest step: set aside (not deleted), the run redoes steps 4-6 from step 3.
  damaged = max((p for p in (tmp_path / "checkpoints" / "6" / "params").rglob("*")
                 if p.is_file()), key=lambda p: p.stat().st_size)
  damaged.write_bytes(damaged.read_bytes()[:-64])
  again = trainer.train_and_evaluate(make_config("eval.evaluators=[]", "log.every_steps=2"),
                                     tmp_path)
  assert again["start_step"] == 3 and again["step"] == 6
  assert (tmp_path / "checkpoints.broken" / "6").is_dir()
  pc = checkpoint.restore(tmp_path / "checkpoints", 6)["params"]
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), pa, pc)
  c = _history(tmp_path)
  assert sorted(c) == [2, 4, 6]
  np.testing.assert_allclose([c[s]["loss"] for s in c], [b[s]["loss"] for s in c], rtol=1e-6)
