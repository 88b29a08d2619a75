"""Resuming a training workdir: the saved config is compared, the log history stays exact.

(The kill -9 resume test in tests/train/test_resume.py compares the whole logged history of a
killed and resumed run with an uninterrupted one.)
"""

from __future__ import annotations

import json
import pathlib
import struct

import numpy as np
import pytest

from lvm_jax import checkpoint
from lvm_jax.errors import ResumeError
from lvm_jax import config as config_loading
from lvm_jax.train import resume, trainer, writers



def _config(*overrides):
  return config_loading.apply_overrides(config_loading.load_config("pretrain:tiny"),
                                        list(overrides))


def _workdir_saved_with(tmp_path, micro, config):
  ckpt = tmp_path / "checkpoints"
  checkpoint.save(ckpt, 4, params=micro[1], config={
      "model": config.model.to_dict(), "train": json.loads(config.to_json_best_effort())})
  return tmp_path


@pytest.mark.parametrize("change", ["model.embed_dim=48", "task.mask_fraction=0.5",
                                    "optimizer.lr=0.5"])
def test_resume_with_a_changed_model_or_recipe_is_refused(tmp_path, micro, change):
  workdir = _workdir_saved_with(tmp_path, micro, _config())
  key = change.split("=")[0]
  with pytest.raises(ResumeError, match=rf"{key} \(saved .*, now .*--allow_config_change"):
    trainer.train_and_evaluate(_config(change), workdir)
  assert not (workdir / "train_log.jsonl").exists()  # refused before any work


def test_resumable_fields_may_change_and_a_flag_allows_the_rest():
  saved = json.loads(_config().to_json_best_effort())
  new = json.loads(_config("num_steps=900", "log.every_steps=3", "eval.every_steps=7",
                           "checkpoint.every_steps=11").to_json_best_effort())
  assert resume.check(saved, new) == ["checkpoint.every_steps", "eval.every_steps",
                                      "log.every_steps", "num_steps"]
  other = json.loads(_config("model.embed_dim=48").to_json_best_effort())
  assert resume.check(saved, other, allow_change=True) == ["model.embed_dim"]
  assert all(resume.resumable(k) for k in ("num_steps", "log.every_steps", "eval.every_steps"))
  assert not any(resume.resumable(k) for k in ("batch_size", "seed", "model.depths"))


def test_a_run_saved_before_data_split_existed_resumes_but_a_new_split_is_refused():
  saved = json.loads(_config().to_json_best_effort())
  del saved["data"]["split"]
  assert resume.check(saved, json.loads(_config().to_json_best_effort())) == []
  changed = json.loads(_config("data.split=pretrain").to_json_best_effort())
  with pytest.raises(ResumeError, match=r"data.split \(saved '<absent>', now 'pretrain'\)"):
    resume.check(saved, changed)


def test_the_open_log_window_survives_a_checkpoint():
  window = [{"loss": np.float32(0.1 + i / 7), "lr": np.float32(1e-3 * i)} for i in range(3)]
  state = json.loads(json.dumps(trainer._log_state(window, 6)))
  restored = trainer._restore_history(state)
  assert trainer._mean_metrics(restored) == trainer._mean_metrics(window)
  assert trainer._restore_history(None) == []  # older checkpoints: a fresh window


def _scalars(tb_dir: pathlib.Path) -> dict[str, dict[int, float]]:
  """{tag: {step: value}} of all TFRecord event files under `tb_dir`."""
  from tensorboardX.proto import event_pb2
  out: dict[str, dict[int, float]] = {}
  for path in sorted(tb_dir.glob("events.out.tfevents.*")):
    data = path.read_bytes()
    i = 0
    while i < len(data):
      (length,) = struct.unpack("<Q", data[i:i + 8])
      event = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
      i += 12 + length + 4
      for v in event.summary.value:
        out.setdefault(v.tag, {})[event.step] = v.simple_value
  return out


def test_tensorboard_history_is_rebuilt_from_the_kept_log(tmp_path):
  first = writers.MetricWriter(tmp_path, tensorboard=True)
  for step in (1, 2, 3, 4):  # a run killed after its checkpoint at step 2
    first.write(step, "train", {"loss": 10.0 + step})
  first.close()
  resumed = writers.MetricWriter(tmp_path, tensorboard=True)
  resumed.truncate_after(2)
  for step in (3, 4):
    resumed.write(step, "train", {"loss": 20.0 + step})
  resumed.close()
  assert _scalars(tmp_path / "tensorboard")["train/loss"] == {1: 11.0, 2: 12.0, 3: 23.0,
                                                              4: 24.0}
  assert [r["loss"] for r in writers.read_log(tmp_path, "train")] == [11.0, 12.0, 23.0, 24.0]
