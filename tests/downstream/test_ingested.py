"""`lvm-jax evaluate` on an ingested, labelled JPEG set (checkpoint pretrained on its pretrain
split), and the task subset it runs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

N = 40


def _blob(seed: int, cls: int, size: int = 40) -> np.ndarray:
  """(size, size, 3) uint8: class 0 a round red blob, class 1 an elongated blue one."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size] - (size - 1) / 2
  q = 1.0 if cls == 0 else 0.3
  blob = np.exp(-np.hypot(x * q, y) / rng.uniform(3, 5))
  colour = np.array([230, 120, 60]) if cls == 0 else np.array([60, 120, 230])
  return np.clip(blob[..., None] * colour + rng.normal(10, 3, (size, size, 3)), 0,
                 255).astype(np.uint8)


@pytest.fixture(scope="session")
def ingested_pretrained(tmp_path_factory, small_lvm_config):
  """(ingest folder, `lvm-jax train`-style workdir pretrained on its `pretrain` split)."""
  from PIL import Image

  from lvm_jax import checkpoint, models
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.ingest import builder
  root = tmp_path_factory.mktemp("ingested_eval")
  (root / "img").mkdir()
  rows = []
  for i in range(N):
    Image.fromarray(_blob(i, i % 2)).save(root / "img" / f"g{i}.png")
    rows.append({"id": f"g{i}", "file": f"img/g{i}.png", "kind": "round" if i % 2 == 0 else "long"})
  with (root / "labels.csv").open("w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  survey = root / "survey"
  builder.ingest(root, root / "labels.csv", survey, builder.IngestOptions(
      label_column="kind", fractions=(("pretrain", 0.3), ("train", 0.4), ("test", 0.3))))
  params = models.init_params(models.build(small_lvm_config), 0)
  prep = Preprocessing(mode="resize", out_size=32, normalisation="display")
  checkpoint.save(root / "pre" / "checkpoints", 1, params=params,
                  config={"model": small_lvm_config.to_dict(),
                          "train": {"data": {"split": "pretrain"}}},
                  meta={"preprocessing": prep.to_dict(), "image_kind": "display_rgb"})
  return survey, root / "pre"


def test_evaluate_on_an_ingest_reads_its_other_splits(ingested_pretrained, tmp_path):
  from lvm_jax.cli import main
  from lvm_jax.ingest import splits
  survey, pre = ingested_pretrained
  workdir = tmp_path / "eval"
  rc = main(["evaluate", "--config", "downstream:quick", "--workdir", str(workdir),
             f"--config.pretrained={pre}", f"--config.data.files={survey / '*.h5'}",
             "--config.resnet.kinds=[]", "--config.few_shot.seeds=[0]",
             "--config.few_shot.per_class=[2]", "--config.data.per_class=5",
             "--config.active.val_rows=4", "--config.steps.fine_tuned=0"])
  assert rc == 0
  results = json.loads((workdir / "results.json").read_text())
  assert results["classes"] == ["long", "round"]
  assert results["tasks"] == ["classification", "restoration", "inpainting"]
  assert results["class_counts_train"] == [5, 5]
  counts = results["class_counts_test"]
  assert counts[0] == counts[1] > 0  # balanced to the rarer class
  pretrain = set(splits.read_split(survey, "pretrain"))
  assert not pretrain & set(results["train_ids"] + results["test_ids"])
  assert set(results["train_ids"]) <= set(splits.read_split(survey, "train"))
  assert set(results["test_ids"]) <= set(splits.read_split(survey, "test"))
  assert set(results["strategies"]) == {"Pre_train", "Multi_uniform", "Multi_active"}
  for s in results["strategies"].values():
    assert 0.0 <= s["classification"]["accuracy"] <= 1.0
    assert set(s["restoration"]) == {"paper"} and np.isfinite(s["restoration"]["paper"]["psnr"])
    assert np.isfinite(s["inpainting"]["8px_0.5"]["psnr_masked"])
    assert "parameters" not in s
  assert {r["per_class"] for r in results["few_shot"]["LVM + head"]} == {2}
  assert results["provenance"]["pretrained_split"] == "pretrain"
  assert "| Multi_active |" in (workdir / "report.md").read_text()


def test_an_ingest_has_no_parameter_task(ingested_pretrained):
  from lvm_jax.configs import downstream
  from lvm_jax.downstream import evaluation
  survey, pre = ingested_pretrained
  config = downstream.get_config("quick")
  config.pretrained, config.data.files = str(pre), str(survey / "*.h5")
  config.tasks.names = ["classification", "parameters"]
  with pytest.raises(ValueError, match="no physical parameters"):
    evaluation.evaluate(config)


def test_make_tasks_builds_the_named_subset():
  from lvm_jax.configs import downstream
  from lvm_jax.downstream import strategies
  config = downstream.get_config("quick")
  assert [t.name for t in strategies.make_tasks(config, 2, 32)] == [
      "classification", "restoration", "inpainting", "parameters"]
  config.tasks.names = ["inpainting", "classification"]
  assert [t.name for t in strategies.make_tasks(config, 2, 32)] == [
      "classification", "inpainting"]
  config.tasks.names = ["restoration"]
  with pytest.raises(ValueError, match="needs 'classification'"):
    strategies.make_tasks(config, 2, 32)


def test_build_labelled_degrades_in_paper_mode_and_names_bad_records(tmp_path):
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.downstream import datasets

  class Source:
    def __init__(self, images):
      self.images = images

    def __getitem__(self, i):
      return {"image": self.images[i], "source_file": "shard.h5", "source_index": i}

  rng = np.random.default_rng(0)
  images = [rng.uniform(0, 255, (40, 40, 3)).astype(np.float32) for _ in range(3)]
  prep = Preprocessing(mode="resize", out_size=32, normalisation="display")
  out = datasets.build_labelled(Source(images), [0, 2], [1, 0], prep, 7)
  assert out["image"].shape == out["degraded"].shape == (2, 32, 32, 3)
  assert out["label"].tolist() == [1, 0] and out["mode"].tolist() == ["paper", "paper"]
  assert not np.allclose(out["image"], out["degraded"])
  again = datasets.build_labelled(Source(images), [0, 2], [1, 0], prep, 7, both_modes=True)
  np.testing.assert_array_equal(again["degraded_paper"], out["degraded"])  # seeded per record
  images[1][3, 4, 0] = np.nan
  with pytest.raises(ValueError, match="shard.h5 index 1"):
    datasets.build_labelled(Source(images), [1], [0], prep, 7)
