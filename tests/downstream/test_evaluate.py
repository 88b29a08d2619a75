"""`lvm-jax evaluate` end to end on a few simulated galaxies with a small pretrained checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory, small_lvm_config):
  """A `lvm-jax train`-style workdir holding a small SUNet checkpoint and a 60-galaxy survey."""
  from lvm_jax import checkpoint, models
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.sim import write_survey
  root = tmp_path_factory.mktemp("downstream")
  write_survey(root / "survey", n=60, seed=5, workers=1)
  model = models.build(small_lvm_config)
  params = models.init_params(model, 0)
  prep = Preprocessing(mode="fixed", crop_size=48, out_size=32, normalisation="asinh")
  checkpoint.save(root / "pre" / "checkpoints", 1, params=params,
                  config={"model": small_lvm_config.to_dict(),
                          "train": {"data": {"val_size": 20, "split_seed": 1}}},
                  meta={"preprocessing": prep.to_dict()})
  return root


def test_evaluate_quick_writes_the_report(pretrained, tmp_path):
  from lvm_jax.cli import main
  workdir = tmp_path / "eval"
  rc = main(["evaluate", "--config", "downstream:quick", "--workdir",
             str(workdir), f"--config.pretrained={pretrained / 'pre'}",
             f"--config.data.files={pretrained / 'survey' / '*.h5'}",
             # ResNets train in tests/downstream/test_training.py; here they would only add compiles.
             "--config.resnet.kinds=[]", "--config.few_shot.seeds=[0]",
             "--config.few_shot.per_class=[2]",
             # the networks' inpainting input: the normalised-convolution fill (off by default)
             "--config.inpainting.prefill=True",
             # one task's Fine_tuned run longer than the others' (steps.fine_tuned is 2)
             "--config.steps.fine_tuned_by_task.inpainting=3"])
  assert rc == 0
  results = json.loads((workdir / "results.json").read_text())
  assert results["provenance"]["git_sha"]
  assert set(results["strategies"]) == {"Pre_train", "Fine_tuned", "Multi_uniform",
                                        "Multi_active"}
  # Fine_tuned: one single-task run per task, each logged under its own name
  assert set(results["strategies"]["Fine_tuned"]["train_log"]) == {
      "classification", "restoration", "inpainting", "parameters"}
  assert results["strategies"]["Fine_tuned"]["steps"] == {
      "classification": 2, "restoration": 2, "inpainting": 3, "parameters": 2}
  assert [r["step"] for r in results["strategies"]["Fine_tuned"]["train_log"]["inpainting"]
          ][-1] == 3
  for s in results["strategies"].values():
    assert 0.0 <= s["classification"]["accuracy"] <= 1.0
    assert np.isfinite(s["restoration"]["paper"]["psnr"])
    assert np.isfinite(s["inpainting"]["8px_0.5"]["psnr_masked"])
  # PSF-aware restoration (restoration.psf_aware): the LVM refining Richardson-Lucy, both modes
  psf = results["psf_aware"]["Fine_tuned on Richardson-Lucy"]["restoration"]
  assert np.isfinite(psf["paper"]["psnr"]) and np.isfinite(psf["physical"]["ssim"])
  # ... and the same model with its flux calibrated per mode (restoration.flux_calibration_rows)
  calibrated = results["psf_aware"]["Fine_tuned on Richardson-Lucy + flux calibration"]
  assert set(calibrated["flux_scale"]) == {"paper", "physical"}
  assert all(np.isfinite(v) and v > 0 for v in calibrated["flux_scale"].values())
  # the normalised-convolution baseline beats the masked input it starts from
  filled = results["references"]["inpainting_filled"]["8px_0.5"]["psnr_masked"]
  assert filled > results["references"]["inpainting"]["8px_0.5"]["psnr_masked"]
  shares = results["strategies"]["Multi_active"]["shares"]
  assert len(shares) >= 2 and sum(shares[-1]["shares"].values()) == pytest.approx(1.0)
  assert {"LVM + head", "LVM fine-tuned + head"} == set(results["few_shot"])
  assert results["few_shot"]["LVM + head"][0]["n_labels"] >= 2
  text = (workdir / "report.md").read_text()
  for heading in ("Table 1", "Table 2", "Table 3", "Few-shot", "## Targets",
                  "Fine_tuned per task classification 2, restoration 2, inpainting 3",
                  "| Fine_tuned on Richardson-Lucy |",
                  "| Fine_tuned on Richardson-Lucy + flux calibration |",
                  "| Normalised convolution |"):
    assert heading in text
  for png in ("few_shot.png", "shares.png", "parameters.png", "gallery_restoration.png",
              "gallery_inpainting.png"):
    assert (workdir / png).stat().st_size > 1000


def test_flux_calibration_undoes_a_flux_bias_of_the_model(pretrained):
  """A model that returns its input with 0.8 times the flux needs 1.25 times the factor of one
  that returns its input unchanged, in both modes."""
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.downstream import datasets, evaluation
  from lvm_jax import config as config_lib
  config = config_lib.load_config("downstream:quick")
  prep = Preprocessing(mode="fixed", crop_size=48, out_size=32, normalisation="asinh")
  source = datasets.open_survey(str(pretrained / "survey" / "*.h5"))
  args = (source, np.arange(6), config, prep, {"paper": 5, "physical": 10})
  unchanged = evaluation.flux_calibration(lambda v, x, head: x, None, "restoration", *args)
  dimmed = evaluation.flux_calibration(
      lambda v, x, head: datasets.scale_flux(x, 0.8, prep), None, "restoration", *args)
  for mode in ("paper", "physical"):
    assert 0.5 < unchanged[mode] < 2.0
    assert dimmed[mode] == pytest.approx(1.25 * unchanged[mode], rel=1e-4)


def test_scale_flux_multiplies_linear_flux():
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.downstream import datasets
  y = np.random.default_rng(0).normal(0.5, 1.0, (2, 8, 8, 3)).astype(np.float32)
  for norm in ("asinh", "none"):
    prep = Preprocessing(mode="fixed", crop_size=48, out_size=32, normalisation=norm)
    np.testing.assert_allclose(datasets.to_flux(datasets.scale_flux(y, 1.3, prep), prep),
                               1.3 * datasets.to_flux(y, prep), rtol=1e-5, atol=1e-6)


def test_bad_pixels_raise_naming_file_and_index(tmp_path):
  import h5py
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.sim import write_survey
  from lvm_jax.downstream import datasets
  (path,) = write_survey(tmp_path, n=3, seed=1, workers=1)
  with h5py.File(path, "r+") as f:
    f["images"][1, 0, 5, 5] = np.nan
  source = datasets.open_survey(str(tmp_path / "*.h5"))
  prep = Preprocessing(mode="fixed", crop_size=48, out_size=32, normalisation="asinh")
  with pytest.raises(ValueError, match=r"\.h5 index 1"):
    datasets.build(source, [0, 1], prep, seed=0)


def test_few_shot_target_takes_the_better_lvm_row_at_the_fewest_labels():
  from lvm_jax.downstream.report import few_shot_target

  def rows(acc_by_per_class):
    return [{"per_class": p, "seed": s, "accuracy": a}
            for p, accs in acc_by_per_class.items() for s, a in enumerate(accs)]

  fs = {"LVM + head": rows({10: [0.1, 0.2], 30: [0.9, 0.9]}),
        "LVM fine-tuned + head": rows({10: [0.4, 0.5], 30: [0.5, 0.5]}),
        "ResNet18": rows({10: [0.3, 0.4], 30: [0.95, 0.95]})}
  name, ok, message = few_shot_target(fs)
  assert ok and "10 labels" in name and message.startswith("LVM fine-tuned + head 0.450")
  fs["ResNet18"] = rows({10: [0.5, 0.5], 30: [0.1, 0.1]})  # the ResNet wins at 10 per class
  assert not few_shot_target(fs)[1]
