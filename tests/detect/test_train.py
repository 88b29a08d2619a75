"""One training step on CPU per backbone kind, the loss, and `lvm-jax detect` end to end."""

from __future__ import annotations

import csv
import json

import jax
import ml_collections
import numpy as np
import pytest

from lvm_jax import models
from lvm_jax.detect import catalogue, fields, model, targets, tiling, train


def _config(steps=1, batch=4):
  return ml_collections.ConfigDict(dict(
      num_steps=steps, batch_size=batch, positive_fraction=0.5, log_every=1,
      loss=dict(heatmap=1.0, size=1.0, offset=1.0, mask=1.0),
      optimizer=dict(name="adamw", lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4,
                     warmup_steps=0, schedule="constant", end_lr_factor=1.0, grad_clip=1.0)))


@pytest.fixture(scope="session")
def tile_set(small_fields, tiny_prep):
  return train.TileSet(small_fields, tiny_prep, 64, 16)


@pytest.fixture(scope="session")
def frozen_lvm():
  det = model.build_detector("lvm_frozen", models.preset("tiny"), channels=16)
  params, state = det.init(0)
  return det, params, state


def test_tiles_and_dense_targets(tile_set):
  assert len(tile_set.positive) > 0 and len(tile_set.negative) > 0
  batch = tile_set.batch(seed=0, step=0, size=4)
  assert batch["image"].shape == (4, 64, 64, 3) and batch["heatmap"].shape == (4, 16, 16)
  again = tile_set.batch(seed=0, step=0, size=4)
  np.testing.assert_array_equal(batch["image"], again["image"])  # seeded by (seed, step)
  v = batch["valid"] > 0
  assert v[:2].any(axis=1).all(), "half the batch holds lenses"
  flat = batch["heatmap"].reshape(4, -1)
  np.testing.assert_allclose(np.take_along_axis(flat, batch["index"], 1)[v], 1.0)
  assert np.all((batch["offset"][v] >= 0) & (batch["offset"][v] < 1))


def test_loss_prefers_the_right_answer(tile_set):
  batch = tile_set.batch(seed=1, step=0, size=4)
  b = jax.tree.map(np.asarray, batch)
  weights = _config().loss
  good = {"heatmap": np.where(b["heatmap"] >= 1 - 1e-4, 8.0, -8.0),
          "size": np.zeros((4, 16, 16, 2)), "offset": np.zeros((4, 16, 16, 2)),
          "mask": np.where(b["foreground"][:, 2::4, 2::4], 8.0, -8.0)}
  for j in range(b["index"].shape[1]):
    for i in range(4):
      if b["valid"][i, j]:
        iy, ix = divmod(int(b["index"][i, j]), 16)
        good["size"][i, iy, ix] = b["size"][i, j]
        good["offset"][i, iy, ix] = b["offset"][i, j]
  bad = {k: -v if k in ("heatmap", "mask") else v + 1.0 for k, v in good.items()}
  lg, parts_g = train.detection_loss(good, b, weights)
  lb, _ = train.detection_loss(bad, b, weights)
  assert float(lg) < 0.5 * float(lb)
  assert float(parts_g["size"]) < 1e-6 and float(parts_g["offset"]) < 1e-6


def test_one_training_step_frozen_lvm_backbone(frozen_lvm, tile_set):
  det, params, state = frozen_lvm
  out = train.train(det, params, state, tile_set, _config(), seed=0, log=lambda *_: None)
  assert np.isfinite(out["history"][-1]["loss"])
  changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), params,
                         out["params"])
  assert not any(jax.tree.leaves(changed["backbone"])), "a frozen backbone does not move"
  assert all(jax.tree.leaves(changed["head"]))


def test_one_training_step_resnet_backbone(tile_set):
  # resnet18 compiles 4x faster than resnet50 on CPU and shares every line of the code path.
  det = model.build_detector("resnet18", models.preset("tiny"), channels=16, resnet_width=8)
  params, state = det.init(0)
  assert "batch_stats" in state
  out = train.train(det, params, state, tile_set, _config(), seed=0, log=lambda *_: None)
  assert np.isfinite(out["history"][-1]["loss"])
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                       params["backbone"], out["params"]["backbone"]))
  # Residual branches start as the identity (last BatchNorm scale 0), so in the first step only
  # the stem, the shortcuts and those scales get gradient.
  assert np.mean(moved) > 0.3, "the ResNet trains from scratch"
  assert np.any(np.asarray(params["backbone"]["conv_stem"]["kernel"])
                != np.asarray(out["params"]["backbone"]["conv_stem"]["kernel"]))
  stats = jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                       state, out["state"]))
  assert any(stats), "BatchNorm statistics are updated"


def test_tiled_detector_compiles_once_for_any_field_size(frozen_lvm, tiny_prep, small_fields):
  det, params, state = frozen_lvm
  tiled = tiling.TiledDetector(det, params, state, tiny_prep, overlap=16, top_k=4, batch=8)
  a = tiled(small_fields[0].image)
  b = tiled(small_fields[1].image[:120, :150])
  assert tiled._predict._cache_size() == 1
  assert a["mask_prob"].shape == (160, 160) and b["mask_prob"].shape == (120, 150)
  assert len(a["boxes"]) == len(a["scores"]) == len(a["masks"])
  assert np.all(np.diff(a["scores"]) <= 0)


def test_detect_command_writes_catalogue_and_overlay(frozen_lvm, tiny_prep, small_fields, tmp_path):
  from lvm_jax import cli
  det, params, state = frozen_lvm
  ckpt = tmp_path / "ckpt"
  catalogue.save_detector(ckpt, 1, "lvm_frozen", models.preset("tiny"), params, state, tiny_prep,
                          {"head_channels": 16, "overlap": 16, "top_k": 4, "score_threshold": 0.0,
                           "img_size": 64}, meta={"seed": 0})
  loaded, lparams, lstate, lprep, dcfg = catalogue.load_detector(ckpt)
  assert lprep == tiny_prep and dcfg["backbone"] == "lvm_frozen"
  f = small_fields[2]
  fits_path, radec = fields.write_fits_field(tmp_path / "field.fits", f, ra=150.0, dec=2.0)
  assert cli.main(["detect", "--checkpoint", str(ckpt), "--fits", fits_path,
                   "--out", str(tmp_path / "out"), "--threshold", "0.0"]) == 0
  rows = list(csv.DictReader(open(tmp_path / "out" / "field_lenses.csv")))
  prov = json.load(open(tmp_path / "out" / "field_lenses.csv.json"))
  assert prov["checkpoint"] == str(ckpt) and "git_sha" in prov and prov["n_detections"] == len(rows)
  assert len(rows) > 0  # threshold 0: the untrained head still reports its top peaks
  for r in rows:
    x = (float(r["x0"]) + float(r["x1"])) / 2 - 0.5
    # RA decreases with x (east left) at 0.262 arcsec/px about the reference pixel.
    expected_ra = 150.0 - (x - (160 - 1) / 2) * fields.PIXEL_SCALE / 3600 / np.cos(np.deg2rad(2.0))
    assert float(r["ra"]) == pytest.approx(expected_ra, abs=2e-6)
    assert int(r["mask_area_px"]) >= 0
  assert (tmp_path / "out" / "field_overlay.png").stat().st_size > 1000
  with pytest.raises(SystemExit, match="no checkpoint"):
    cli.main(["detect", "--checkpoint", str(tmp_path / "none"), "--fits", fits_path])
