"""Two processes with 4 CPU devices each (Gloo) reproduce the losses of one process with 8."""

import socket
import subprocess

import numpy as np
import pytest

from lvm_jax.train import writers

TIMEOUT_S = 420


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.cpu_only
def test_two_processes_match_one(straight_run, train_argv, child_env, repo, tmp_path):
  straight_dir, _ = straight_run
  port = _free_port()
  procs = [subprocess.Popen(
      train_argv(tmp_path, "eval.evaluators=[]") + [
          "--coordinator", f"localhost:{port}", "--num_processes", "2", "--process_id", str(i)],
      env=child_env(4, threads_one=True), cwd=repo, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=TIMEOUT_S)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-4000:]
  one = {r["step"]: r["loss"] for r in writers.read_log(straight_dir, "train")}
  two = {r["step"]: r["loss"] for r in writers.read_log(tmp_path, "train")}
  assert sorted(two) == sorted(one) == [1, 2, 3, 4, 5, 6]
  np.testing.assert_allclose([two[s] for s in sorted(two)], [one[s] for s in sorted(one)],
                             rtol=1e-5)
