"""One real training step end to end, and the loop's products (log, checkpoint, provenance)."""

import json

import numpy as np

from lvm_jax import checkpoint
from lvm_jax.train import trainer, writers


def test_one_step_writes_log_checkpoint_and_provenance(make_config, tmp_path):
  config = make_config("num_steps=1", "eval.evaluators=['reconstruction','knn']",
                       "log.gallery_every_steps=1", "log.tensorboard=True")
  summary = trainer.train_and_evaluate(config, tmp_path)
  assert summary["step"] == 1
  train = writers.read_log(tmp_path, "train")
  assert [r["step"] for r in train] == [1]
  assert np.isfinite(train[0]["loss"]) and train[0]["loss"] > 0
  assert train[0]["count"] == 8 and train[0]["grad_norm"] > 0
  ev = writers.read_log(tmp_path, "eval")[-1]
  for key in ("reconstruction/mse", "reconstruction/baseline_blur_mse", "knn/acc", "knn/pca_acc",
              "knn/random_init_acc"):
    assert np.isfinite(ev[key]), key
  compile_record = writers.read_log(tmp_path, "compile")[0]
  assert compile_record["temp_size_in_bytes"] > 0  # memory_analysis() was logged
  assert checkpoint.latest_step(tmp_path / "checkpoints") == 1
  data_iter = checkpoint.read_json(tmp_path / "checkpoints", "data_iter")
  assert data_iter["next_batch"] == 1
  prov = json.loads((tmp_path / "provenance.json").read_text())
  assert "git_sha" in prov and "jax" in prov["packages"]
  assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 8
  assert list((tmp_path / "gallery").glob("*.png"))
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
