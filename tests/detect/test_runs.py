"""`lvm-jax train-detector` on the tiniest config for two steps, then `lvm-jax detect` on its
checkpoint."""

from __future__ import annotations

import csv
import json

from lvm_jax import cli
from lvm_jax.detect import fields


# the tiniest run: one frozen-LVM detector, two steps, one small field per set
TINY = ["--config", "detect:tiny,runlocal", "--config.backbones=['lvm_frozen']",
        "--config.seeds=[0]", "--config.num_steps=2", "--config.batch_size=2",
        "--config.head_channels=16", "--config.fields.size=128", "--config.fields.lenses=[1, 1]",
        "--config.fields.train=1", "--config.fields.val=1", "--config.fields.test=1",
        "--config.fields.impostor=1", "--config.fields.mean_targets=2.0"]


def test_train_detector_then_detect(tmp_path, small_fields):
  workdir = tmp_path / "detector"
  assert cli.main(["train-detector", "--workdir", str(workdir), *TINY]) == 0
  record = json.loads((workdir / "results.json").read_text())
  assert record["git_sha"] and record["config"]["num_steps"] == 2
  assert record["n_fields"] == {"train": 1, "val": 1, "test": 1, "impostor": 1}
  [run] = record["results"]
  assert (run["backbone"], run["seed"]) == ("lvm_frozen", 0)
  assert [row["step"] for row in run["history"]] == [0, 1]
  assert all(row["loss"] > 0 for row in run["history"])
  assert 0.0 <= run["box"]["ap50"] <= 1.0 and run["operating_point"]["chosen_on"]
  assert "| lvm_frozen |" in (workdir / "results.md").read_text()
  ap50 = record["summary"]["lvm_frozen"]["box_ap50"]
  assert ap50["values"] == [run["box"]["ap50"]] and ap50["median"] == run["box"]["ap50"]
  assert record["fields"]["train"]["spec"]["theta_e_range"] == [1.2, 3.0]
  ckpt = workdir / "runs" / "lvm_frozen_s0" / "checkpoint"
  assert record["checkpoints"]["lvm_frozen_s0"] == str(ckpt)

  # a rerun reuses the finished run
  assert cli.main(["train-detector", "--workdir", str(workdir), *TINY]) == 0
  again = json.loads((workdir / "results.json").read_text())
  assert again["results"][0]["reused_from"].endswith("result.json")

  fits_path, _ = fields.write_fits_field(tmp_path / "field.fits", small_fields[0])
  assert cli.main(["detect", "--checkpoint", str(ckpt), "--fits", fits_path,
                   "--out", str(tmp_path / "out"), "--threshold", "0.0"]) == 0
  rows = list(csv.DictReader(open(tmp_path / "out" / "field_lenses.csv")))
  prov = json.loads((tmp_path / "out" / "field_lenses.csv.json").read_text())
  assert prov["checkpoint"] == str(ckpt) and prov["n_detections"] == len(rows) > 0


def test_train_detector_refuses_an_unknown_backbone(tmp_path, capsys):
  assert cli.main(["train-detector", "--config", "detect:tiny,runlocal", "--workdir",
                   str(tmp_path), "--config.backbones=['vit']"]) == 2
  assert "unknown ['vit']" in capsys.readouterr().err
  assert not (tmp_path / "fields").exists()


def test_summary_gives_the_median_and_interval_per_backbone():
  from lvm_jax.detect import runs
  results = [dict(backbone=b, seed=s, box=dict(ap50=a, ap=a / 2), mask=dict(ap50=a, ap=a / 3))
             for b, aps in (("lvm_finetune", (0.6, 0.7, 0.8)), ("resnet50", (0.5, 0.4, 0.45)))
             for s, a in enumerate(aps)]
  summary = runs.summary(results)
  assert summary["lvm_finetune"]["box_ap50"]["median"] == 0.7
  assert summary["resnet50"]["box_ap50"]["median"] == 0.45
  lo, hi = summary["resnet50"]["box_ap50"]["ci95"]
  assert 0.4 <= lo <= 0.45 <= hi <= 0.5
  assert summary["lvm_finetune"]["mask_ap"]["values"] == [0.6 / 3, 0.7 / 3, 0.8 / 3]
  assert runs._median_ci([0.6, 0.7, 0.8]).startswith("0.700 (0.6")
