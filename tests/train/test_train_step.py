"""One real training step end to end; SIGTERM makes the loop save at the step boundary and exit."""

import json

import numpy as np

from lvm_jax import checkpoint
from lvm_jax.train import trainer, writers


def test_one_step_then_sigterm_saves_and_exits(make_config, tmp_path):
  # The loop sends itself SIGTERM after step 1: the handler only sets a flag, the loop saves
  # step 1 (not a multiple of checkpoint.every_steps=3) and returns before step 2.
  config = make_config("debug.sigterm_at_step=1", "eval.evaluators=['reconstruction','knn']",
                       "eval.every_steps=1", "log.gallery_every_steps=1", "log.tensorboard=True")
  summary = trainer.train_and_evaluate(config, tmp_path)
  assert summary["preempted"] and summary["step"] == 1 and summary["saved_step"] == 1
  train = writers.read_log(tmp_path, "train")
  assert [r["step"] for r in train] == [1]
  assert np.isfinite(train[0]["loss"]) and train[0]["loss"] > 0
  assert train[0]["count"] == 8 and train[0]["grad_norm"] > 0 and train[0]["lr"] == 0.0
  ev = writers.read_log(tmp_path, "eval")[-1]
  for key in ("reconstruction/mse", "reconstruction/psnr", "reconstruction/baseline_blur_mse",
              "knn/acc", "knn/pca_acc", "knn/random_init_acc"):
    assert np.isfinite(ev[key]), key
  assert 0.0 <= ev["knn/acc"] <= 1.0
  compile_record = writers.read_log(tmp_path, "compile")[0]
  assert compile_record["temp_size_in_bytes"] > 0  # memory_analysis() was logged
  assert checkpoint.latest_step(tmp_path / "checkpoints") == 1
  assert checkpoint.read_json(tmp_path / "checkpoints", "data_iter")["next_batch"] == 1
  saved = checkpoint.read_json(tmp_path / "checkpoints", "config")
  assert saved["model"]["img_size"] == 32 and saved["train"]["batch_size"] == 8
  prov = json.loads((tmp_path / "provenance.json").read_text())
  assert "git_sha" in prov and "jax" in prov["packages"]
  assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 8
  assert list((tmp_path / "gallery").glob("*.png"))
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
