"""Bad images raise BadImageError naming file and index; Quarantine counts and writes them."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_jax.data import validate
from lvm_jax.data.validate import BadImageError


def _bad(image, **kw):
  with pytest.raises(BadImageError) as e:
    validate.validate_image(image, source="images_000.h5", index=17, **kw)
  assert "images_000.h5" in str(e.value) and "17" in str(e.value)
  return e.value


def test_good_image_passes(make_galaxy):
  image = make_galaxy(16)
  assert validate.validate_image(image, expected_shape=(16, 16)) is image


@pytest.mark.parametrize("value,reason", [(np.nan, "nonfinite"), (np.inf, "nonfinite"),
                                          (-np.inf, "nonfinite")])
def test_nonfinite(make_galaxy, value, reason):
  image = make_galaxy(16)
  image[2, 3, 1] = value
  err = _bad(image)
  assert err.reason == reason and isinstance(err, ValueError)


def test_zero_constant_and_shapes(make_galaxy):
  assert _bad(np.zeros((8, 8, 3))).reason == "all_zero"
  assert _bad(np.full((8, 8, 3), 0.5)).reason == "constant"
  image = make_galaxy(8)
  image[..., 2] = 0.0
  assert _bad(image).reason == "constant_band"
  validate.validate_image(image, allow_constant_band=True)
  assert _bad(make_galaxy(8, bands=4)).reason == "band_count"
  assert _bad(make_galaxy(8), expected_shape=(152, 152)).reason == "shape"
  assert _bad(np.ones((8, 8))).reason == "shape"


def test_quarantine_collects_and_writes(tmp_path, make_galaxy):
  records = [{"image": make_galaxy(8), "source_file": "a.h5", "source_index": 0, "id": "1_2_3"},
             {"image": np.zeros((8, 8, 3)), "source_file": "a.h5", "source_index": 1, "id": "1_2_4"},
             {"image": np.full((8, 8, 3), np.nan), "source_file": "b.h5", "source_index": 5,
              "id": "1_3_1"},
             {"image": np.zeros((8, 8, 3)), "source_file": "b.h5", "source_index": 6, "id": "1_3_2"}]
  q = validate.Quarantine()
  kept = [r["id"] for r in records if q.check(r)]
  assert kept == ["1_2_3"]
  assert q.counts() == {"all_zero": 2, "nonfinite": 1}
  rows = q.to_rows()
  assert rows[1]["source_file"] == "b.h5" and rows[1]["source_index"] == 5
  assert rows[1]["id"] == "1_3_1" and "b.h5" in rows[1]["detail"]
  path = q.write_jsonl(tmp_path / "q" / "quarantine.jsonl")
  assert len(path.read_text().splitlines()) == 3
  assert validate.Quarantine.read_jsonl(path).to_rows() == rows


def test_unreadable_file_error_is_oserror(tmp_path):
  err = validate.UnreadableFileError(tmp_path / "x.fits", "truncated")
  assert isinstance(err, OSError) and "x.fits" in str(err) and err.reason == "unreadable"


@pytest.mark.parametrize("shape", [(8, 8, 3), (5, 7, 3), (1, 9, 4), (6, 1, 1)])
def test_band_extremes_match_the_plain_reduction(shape):
  image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  for view in (image, image[::-1, ::2], np.asfortranarray(image)):
    lo, hi = validate._band_extremes(view)
    flat = view.reshape(-1, view.shape[-1])
    np.testing.assert_array_equal(lo, flat.min(axis=0))
    np.testing.assert_array_equal(hi, flat.max(axis=0))


def test_constant_band_found_in_any_position(make_galaxy):
  for band in range(3):
    image = make_galaxy(8)
    image[..., band] = 0.25
    err = _bad(image)
    assert err.reason == "constant_band" and f"[{band}]" in str(err)
