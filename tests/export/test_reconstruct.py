"""`lvm-jax reconstruct`: panels of the expected size, MSE as computed directly, clear input errors."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from PIL import Image

from lvm_jax import checkpoint, cli
from lvm_jax.export import reconstruct
from lvm_jax.data.preprocess import Preprocessing

PREPROCESSING = Preprocessing(mode="resize", out_size=64, normalisation="asinh")


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny, tmp_path_factory):
  config, _, params = tiny
  directory = tmp_path_factory.mktemp("tiny_ckpt")
  checkpoint.save(directory, 0, params=params, config={"model": config.to_dict()},
                  meta={"preprocessing": PREPROCESSING.to_dict()})
  return directory


@pytest.mark.needs_shared
def test_cli_writes_panels_and_mse(tiny, tiny_checkpoint, desi_dir, tmp_path):
  _, module, params = tiny
  paths = sorted(desi_dir.glob("*.fits"))[:2]
  out = tmp_path / "recon"
  assert cli.main(["reconstruct", "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                   *map(str, paths)]) == 0

  report = json.loads((out / "reconstruct.json").read_text())
  assert [r["file"] for r in report["cutouts"]] == [str(p) for p in paths]
  assert report["provenance"]["preprocessing"] == PREPROCESSING.to_dict()
  assert report["provenance"]["checkpoint"]["step"] == 0
  inputs = np.stack([reconstruct.prepare_cutout(p, PREPROCESSING).inputs for p in paths])
  apply = jax.jit(lambda p, x: module.apply({"params": p}, x, train=False)["reconstruction"])
  recon = np.asarray(apply(params, inputs))
  expected = ((recon.astype(np.float64) - inputs) ** 2).mean(axis=(1, 2, 3))
  np.testing.assert_allclose([r["mse"] for r in report["cutouts"]], expected, rtol=1e-4)
  for row in report["cutouts"]:
    with Image.open(row["png"]) as png:
      assert png.size == reconstruct.PNG_SIZE_PX
    assert row["sky_sigma_r_nmgy"] > 0


def test_sky_sigma_of_pure_noise():
  band = np.random.default_rng(0).normal(0.0, 0.01, size=(64, 64))
  assert reconstruct.sky_sigma(band) == pytest.approx(0.01, rel=0.15)


def test_png_names_disambiguate_repeated_ids():
  assert reconstruct._png_names(["a", "b", "a"]) == ["a.png", "b.png", "a-2.png"]


@pytest.mark.parametrize("problem", ["nan", "bands"])
def test_bad_input_names_the_file(problem, tiny_checkpoint, make_cutout, make_galaxy, tmp_path):
  image = make_galaxy(64)
  if problem == "nan":
    image[5, 5, 1] = np.nan
    planes = {"g": image[..., 0], "r": image[..., 1], "z": image[..., 2]}
  else:
    planes = {"g": image[..., 0], "r": image[..., 1], "i": image[..., 2]}
  path = make_cutout(tmp_path / f"cutout_{problem}.fits", planes)
  out = tmp_path / "recon"
  with pytest.raises(SystemExit, match=f"cutout_{problem}.fits.*({'NaN' if problem == 'nan' else 'z'})"):
    cli.main(["reconstruct", "--checkpoint", str(tiny_checkpoint), "--out", str(out), str(path)])
  assert not out.exists()


def test_missing_checkpoint_is_not_created(tmp_path):
  missing = tmp_path / "no_such_checkpoint"
  with pytest.raises(SystemExit, match="no_such_checkpoint"):
    cli.main(["reconstruct", "--checkpoint", str(missing), str(tmp_path / "a.fits")])
  assert not missing.exists()
