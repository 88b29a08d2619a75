"""Small labelled sets made once: FITS cutouts and JPEGs, each with planted faults.

Each set: CSV rows g0..g7 (classes a/b alternating); row `bad` names a corrupt file, row
`gone` names a file that does not exist, and the folder holds `extra.*` that no row names.
"""

from __future__ import annotations

import csv
import pathlib

import numpy as np
import pytest

N_GOOD = 8
STAMP = 48


def _write_csv(path: pathlib.Path, rows: list[dict]) -> pathlib.Path:
  with path.open("w", newline="") as f:
    out = csv.DictWriter(f, fieldnames=list(rows[0]))
    out.writeheader()
    out.writerows(rows)
  return path


def _rows(suffix: str) -> list[dict]:
  rows = [{"id": f"g{i}", "file": f"img/g{i}{suffix}", "ra": 150 + i * 0.01, "dec": 2.0,
           "class_name": "ab"[i % 2], "mag": 17.5 + i} for i in range(N_GOOD)]
  rows.insert(3, {"id": "bad", "file": f"img/bad{suffix}", "ra": 151.0, "dec": 2.0,
                  "class_name": "a", "mag": 20.0})
  rows.append({"id": "gone", "file": f"img/gone{suffix}", "ra": 152.0, "dec": 2.0,
               "class_name": "b", "mag": 21.0})
  return rows


def rgb_image(seed: int, size: int = STAMP) -> np.ndarray:
  """(size, size, 3) uint8: a coloured blob on a dark, noisy sky."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size] - (size - 1) / 2
  blob = np.exp(-np.hypot(x, y) / rng.uniform(3, 8))
  colour = rng.uniform(80, 250, 3)
  image = blob[..., None] * colour + rng.normal(10, 3, (size, size, 3))
  return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def jpeg_set(tmp_path_factory):
  """(folder, csv path) of a JPEG set: 8 good, one truncated, one missing, one unlisted."""
  from PIL import Image
  root = tmp_path_factory.mktemp("jpeg_set")
  (root / "img").mkdir()
  for i in range(N_GOOD):
    Image.fromarray(rgb_image(i)).save(root / "img" / f"g{i}.jpg", quality=95)
  Image.fromarray(rgb_image(99)).save(root / "img" / "extra.jpg")
  data = (root / "img" / "g0.jpg").read_bytes()
  (root / "img" / "bad.jpg").write_bytes(data[:len(data) // 3])  # truncated
  return root, _write_csv(root / "labels.csv", _rows(".jpg"))


@pytest.fixture
def fits_set(tmp_path, make_cutout, make_galaxy):
  """(folder, csv path) of a g, r, z FITS set: 8 good, one all-NaN, one missing, one unlisted."""
  root = tmp_path / "fits_set"
  (root / "img").mkdir(parents=True)
  for i in range(N_GOOD):
    cube = make_galaxy(STAMP, seed=i)
    make_cutout(root / "img" / f"g{i}.fits", dict(zip("grz", np.moveaxis(cube, -1, 0))),
                ra=30 + i, dec=-1.0)
  nan = np.full((STAMP, STAMP), np.nan, np.float32)
  make_cutout(root / "img" / "bad.fits", {"g": nan, "r": nan, "z": nan})
  make_cutout(root / "img" / "extra.fits",
              dict(zip("grz", np.moveaxis(make_galaxy(STAMP), -1, 0))))
  return root, _write_csv(root / "labels.csv", _rows(".fits"))
