"""Killing a run (SIGKILL) right after its mid-way checkpoint and resuming gives the same run."""

import subprocess

import jax
import numpy as np

from lvm_jax import checkpoint
from lvm_jax.train import trainer, writers


def _losses(workdir):
  return {r["step"]: r["loss"] for r in writers.read_log(workdir, "train")}


def test_kill_and_resume_matches_straight_run(straight_run, make_config, train_argv, child_env,
                                              repo, tmp_path):
  straight_dir, straight = straight_run
  assert straight["step"] == 6
  # A child process trains to step 3, waits for that checkpoint, then SIGKILLs itself.
  child = subprocess.run(train_argv(tmp_path, "eval.evaluators=[]",
                                    "debug.kill_after_checkpoint_step=3"),
                         env=child_env(8), cwd=repo, capture_output=True, text=True, timeout=300)
  assert child.returncode == -9, child.stderr[-3000:]
  assert checkpoint.latest_step(tmp_path / "checkpoints") == 3
  resumed = trainer.train_and_evaluate(make_config("eval.evaluators=[]"), tmp_path)
  assert resumed["start_step"] == 3 and resumed["step"] == 6

  a, b = _losses(straight_dir), _losses(tmp_path)
  assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]  # logs continue from the restored step
  np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)], rtol=1e-6)
  pa = checkpoint.restore(straight_dir / "checkpoints", 6)["params"]
  pb = checkpoint.restore(tmp_path / "checkpoints", 6)["params"]
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), pa, pb)
  it = checkpoint.read_json(tmp_path / "checkpoints", "data_iter")
  assert it["next_batch"] == 6
