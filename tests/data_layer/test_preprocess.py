"""Paper preprocessing parity on the 14 real cutouts; crops, stretch, and the Preprocessing config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvm_jax.data import fits_cutout, preprocess


@pytest.fixture(scope="module")
def real_images(desi_dir):
  return {p.name: fits_cutout.read_fits_cutout(p).image for p in sorted(desi_dir.glob("*.fits"))}


def test_adaptive_crop_boxes_match_reference(real_images, reference_dir):
  expected = json.loads((reference_dir / "adaptive_crop_boxes.json").read_text())
  assert set(expected) == set(real_images)
  for name, image in real_images.items():
    assert list(preprocess.adaptive_crop_box(image)) == expected[name], name


def test_paper_preprocess_matches_reference(real_images, reference_dir):
  ref = np.load(reference_dir / "paper_preprocess.npz")
  assert len(ref["names"]) == 14
  worst = 0.0
  for name, expected in zip(ref["names"], ref["inputs_nhwc"]):
    out = preprocess.paper_preprocess(real_images[str(name)])
    assert out.shape == (128, 128, 3) and out.dtype == np.float32
    worst = max(worst, float(np.abs(out - expected).max()))
  assert worst <= 1e-6  # measured: 0.0 (bit-identical)


def test_legacy_survey_rgb_channels(real_images):
  image = next(iter(real_images.values()))
  rgb = preprocess.legacy_survey_rgb(image)
  assert rgb.shape == image.shape and rgb.min() >= 0.0 and rgb.max() <= 1.0
  # Channel 0 is z: scaling only the z band moves only channel 0's numerator.
  bright_z = image.copy()
  bright_z[..., 2] *= 3
  changed = np.abs(preprocess.legacy_survey_rgb(bright_z) - rgb).mean(axis=(0, 1))
  assert changed[0] > changed[1] and changed[0] > changed[2]
  display = preprocess.display_rgb(image)
  assert display.dtype == np.uint8 and display.shape == image.shape
  np.testing.assert_array_equal(display, np.round(rgb * 255).astype(np.uint8))


def test_adaptive_crop_whole_stamp_without_contour():
  assert preprocess.adaptive_crop_box(np.zeros((40, 40, 3))) == (0, 0, 40, 40)
  assert preprocess.adaptive_crop_box(np.full((40, 40, 3), 0.3)) == (0, 0, 40, 40)
  with pytest.raises(ValueError, match="square"):
    preprocess.adaptive_crop_box(np.zeros((40, 30, 3)))
  with pytest.raises(ValueError, match="finite"):
    preprocess.adaptive_crop_box(np.full((40, 40, 3), np.nan))


def test_adaptive_crop_on_synthetic_galaxy(make_galaxy):
  image = make_galaxy(64)
  out, (x0, y0, x1, y1) = preprocess.adaptive_crop(image, 32)
  assert out.shape == (32, 32, 3)
  assert x1 - x0 == y1 - y0 and 0 <= x0 < 32 < x1 <= 64 and x0 == y0


def test_fixed_crop_and_resize(make_galaxy):
  image = make_galaxy(64)
  crop, box = preprocess.fixed_crop(image, 32)
  assert box == (16, 16, 48, 48)
  np.testing.assert_array_equal(crop, image[16:48, 16:48])
  small, _ = preprocess.fixed_crop(image, 32, out_size=16)
  assert small.shape == (16, 16, 3)
  assert np.abs(small.mean() - crop.mean()) < 0.05 * np.abs(crop).max()
  with pytest.raises(ValueError, match="does not fit"):
    preprocess.fixed_crop(image, 65)


def test_asinh_stretch_is_invertible(make_galaxy):
  image = make_galaxy(32)
  y = preprocess.asinh_stretch(image)
  np.testing.assert_allclose(preprocess.inverse_asinh_stretch(y), image, rtol=1e-5, atol=1e-7)
  # Linear below the softening, logarithmic far above it.
  assert preprocess.asinh_stretch(np.full((1, 1, 1), 1e-5), 1.0)[0, 0, 0] == pytest.approx(1e-5)
  assert preprocess.asinh_stretch(np.full((1, 1, 1), 1e4), 1.0)[0, 0, 0] == pytest.approx(
      np.log(2e4), rel=1e-6)


def test_asinh_stretch_nonfinite_handling(make_galaxy):
  image = make_galaxy(16)
  image[3, 4, 1] = np.nan
  image[0, 0, 0] = np.inf
  with pytest.raises(ValueError, match="2 NaN/inf"):
    preprocess.asinh_stretch(image)
  y, mask = preprocess.asinh_stretch(image, nonfinite="zero")
  assert mask.sum() == 2 and mask[3, 4, 1] and mask[0, 0, 0]
  assert y[3, 4, 1] == 0.0 and np.isfinite(y).all()
  with pytest.raises(ValueError, match="nonfinite"):
    preprocess.asinh_stretch(image, nonfinite="ignore")
  with pytest.raises(ValueError, match="softening"):
    preprocess.asinh_stretch(make_galaxy(8), scale=(0.1, 0.0, 0.1))


def test_preprocessing_config(real_images, reference_dir):
  name, image = next(iter(real_images.items()))
  ref = np.load(reference_dir / "paper_preprocess.npz")
  paper = preprocess.Preprocessing()
  out, info = paper.apply(image)
  np.testing.assert_array_equal(out, ref["inputs_nhwc"][list(ref["names"]).index(name)])
  assert info["box"] == (50, 50, 206, 206)
  assert info["arcsec_per_pixel"] == pytest.approx(0.262 * 156 / 128)

  whole, info = preprocess.Preprocessing(mode="resize").apply(image[:152, :152])
  assert whole.shape == (128, 128, 3) and info["box"] == (0, 0, 152, 152)
  assert info["arcsec_per_pixel"] == pytest.approx(0.262 * 152 / 128)

  fixed = preprocess.Preprocessing(mode="fixed", out_size=64, crop_size=96, normalisation="asinh")
  out, info = fixed.apply(image)
  assert out.shape == (64, 64, 3) and info["box"] == (80, 80, 176, 176)
  assert info["arcsec_per_pixel"] == pytest.approx(0.262 * 96 / 64)
  raw, _ = preprocess.fixed_crop(image, 96, 64)
  np.testing.assert_allclose(preprocess.inverse_asinh_stretch(out), raw, rtol=1e-5, atol=1e-7)

  d = json.loads(json.dumps(fixed.to_dict()))
  assert preprocess.Preprocessing.from_dict(d) == fixed
  with pytest.raises(ValueError, match="mode"):
    preprocess.Preprocessing(mode="center")
  with pytest.raises(ValueError, match="normalisation"):
    preprocess.Preprocessing(normalisation="log")
  with pytest.raises(ValueError, match="unknown"):
    preprocess.Preprocessing.from_dict({**d, "colour": 1})
  bad = image.copy()
  bad[0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    paper.apply(bad)


def test_display_normalisation_maps_8_bit_composites_to_unit_range_in_both_paths():
  """'display': an ingested JPEG/PNG set's 0-255 values / 255, the same in `Preprocessing.apply`
  and the pipeline's fast path, and back to display units for reconstructions."""
  from lvm_jax.data.pipeline import apply_preprocessing
  from lvm_jax.export.reconstruct import to_nanomaggies
  rgb = np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.float32)
  prep = preprocess.Preprocessing(mode="resize", out_size=40, normalisation="display")
  slow, info = prep.apply(rgb)
  fast, _ = apply_preprocessing(prep, rgb)
  assert info["normalisation"] == "display" and slow.dtype == fast.dtype == np.float32
  np.testing.assert_allclose(slow, rgb / 255.0, rtol=1e-6)
  np.testing.assert_allclose(fast, slow, rtol=1e-6)
  np.testing.assert_allclose(to_nanomaggies(slow, prep), rgb, rtol=1e-5)
  with pytest.raises(ValueError, match="normalisation must be one of"):
    preprocess.Preprocessing(normalisation="rgb")
