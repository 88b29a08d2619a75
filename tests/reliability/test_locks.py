"""A second writer of an export folder, a training workdir or a label store stops at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys


import pytest

from lvm_jax import locks
from lvm_jax.errors import LockedError



def _held_by(path, pid: int, host: str | None = None):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                              "started": "2026-01-01T00:00:00Z", "command": "lvm-jax export"}))


def _dead_pid() -> int:
  child = subprocess.Popen([sys.executable, "-c", "pass"])
  child.wait()
  return child.pid


def test_second_export_into_one_folder_stops_at_once(tmp_path, micro_checkpoint, tools):
  from lvm_jax.export import ExportSettings, export_survey
  out = tmp_path / "out"
  _held_by(out / locks.LOCK_NAME, os.getppid())  # a live process on this host
  data = tools.write_hdf5(tmp_path / "s.h5")
  with pytest.raises(LockedError, match=rf"export folder {out} is in use by pid "
                                        rf"{os.getppid()} on {socket.gethostname()}"):
    export_survey(micro_checkpoint, data, out, ExportSettings(batch=8), progress=False)
  assert sorted(p.name for p in out.iterdir()) == [locks.LOCK_NAME]  # nothing written


def test_second_trainer_on_one_workdir_stops_at_once(tmp_path):
  from lvm_jax import config as config_loading
  from lvm_jax.train import trainer
  config = config_loading.load_config("pretrain:tiny")
  _held_by(tmp_path / locks.LOCK_NAME, os.getppid())
  with pytest.raises(LockedError, match="training workdir .* is in use by pid"):
    trainer.train_and_evaluate(config, tmp_path)
  assert not (tmp_path / "config.json").exists()


def test_second_app_on_one_label_store_stops_at_once(tmp_path):
  from lvm_jax.hitl.app.data import AppConfig
  from lvm_jax.hitl.app.server import serve
  store = tmp_path / "labels.sqlite"
  _held_by(tmp_path / "labels.sqlite.lock", os.getppid())
  with pytest.raises(LockedError, match="label store .* is in use"):
    serve(AppConfig(embeddings=tmp_path / "none", store=store), start=False)


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, capsys):
  lock = tmp_path / locks.LOCK_NAME
  _held_by(lock, _dead_pid())
  with locks.hold(lock, "export folder x"):
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    with pytest.raises(LockedError, match="already locked by this process"):
      locks.acquire(lock, "export folder x")
  assert not lock.exists()
  assert "taking over the stale lock" in capsys.readouterr().err


def test_lock_of_another_host_is_never_taken_over(tmp_path):
  lock = tmp_path / locks.LOCK_NAME
  _held_by(lock, _dead_pid(), host="elsewhere.example")
  with pytest.raises(LockedError, match="elsewhere.example.*remove"):
    locks.acquire(lock, "training workdir w")
