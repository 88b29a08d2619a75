"""Small inputs for the reliability suite: a micro model's checkpoint, FITS and HDF5 writers."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

MICRO = dict(img_size=32, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
             window_size=4)
STAMP = 40  # px of the test cutouts; the fixed 24 px crop is resized to the model's 32


def micro_model():
  """(config, params) of a 32 px, 16-channel SUNet (compiles in seconds on a CPU)."""
  import jax
  from lvm_jax import models
  config = models.preset("tiny")
  config.update(MICRO)
  params = models.init_params(models.build(config), jax.random.key(0))
  return config, params


def blob(size: int = STAMP, bands: int = 3, seed: int = 0) -> np.ndarray:
  """(bands, size, size) float32 nanomaggies: an exponential galaxy plus sky noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size] - (size - 1) / 2
  image = np.exp(-np.hypot(x, y) / rng.uniform(2, 6))[None] * rng.uniform(0.1, 2, (bands, 1, 1))
  return (image + rng.normal(0, 0.01, (bands, size, size))).astype(np.float32)


def write_fits(path: pathlib.Path, cube: np.ndarray, bands=("g", "r", "z"),
               checksum: bool = True) -> pathlib.Path:
  """A cutout file: `cube` (planes, H, W) or (H, W) with BAND0.. keywords for `bands`."""
  from astropy.io import fits
  header = fits.Header()
  for i, b in enumerate(bands):
    header[f"BAND{i}"] = b
  fits.PrimaryHDU(cube, header=header).writeto(path, overwrite=True, checksum=checksum)
  return path


def write_hdf5(path: pathlib.Path, n: int = 6, seed: int = 0, objid=None) -> pathlib.Path:
  """An ssl-layout file of `n` float32 stamps of STAMP px (ids 9010_100_<objid>)."""
  from lvm_jax.data.hdf5_source import write_ssl_hdf5
  images = np.stack([blob(seed=seed + i) for i in range(n)])
  objid = np.arange(n) if objid is None else np.asarray(objid)
  rng = np.random.default_rng(seed)
  return write_ssl_hdf5(path, images, {"release": np.full(n, 9010), "brickid": np.full(n, 100),
                                       "objid": objid, "ra": rng.uniform(150, 151, n),
                                       "dec": rng.uniform(2, 3, n)}, npix=None)


@pytest.fixture(scope="session")
def micro():
  return micro_model()


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory, micro):
  """A checkpoint folder of the micro model with steps 1 and 2 (identical params)."""
  from lvm_jax import checkpoint
  from lvm_jax.data.preprocess import Preprocessing
  config, params = micro
  d = tmp_path_factory.mktemp("micro") / "ckpt"
  meta = {"preprocessing": Preprocessing(mode="fixed", crop_size=24, out_size=32).to_dict()}
  for step in (1, 2):
    checkpoint.save(d, step, params=params, config={"model": config.to_dict()}, meta=meta)
  return d


@pytest.fixture
def ckpt_copy(micro_checkpoint, tmp_path):
  """A private copy of `micro_checkpoint` to damage."""
  import shutil
  return pathlib.Path(shutil.copytree(micro_checkpoint, tmp_path / "ckpt"))


def largest_file(folder: pathlib.Path) -> pathlib.Path:
  return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def flip_byte(path: pathlib.Path, offset: int | None = None) -> None:
  data = bytearray(path.read_bytes())
  data[len(data) // 2 if offset is None else offset] ^= 0x10
  path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def tools():
  """The helpers above (conftest modules are not importable from the tests)."""
  import types
  return types.SimpleNamespace(flip_byte=flip_byte, largest_file=largest_file, blob=blob,
                               write_fits=write_fits, write_hdf5=write_hdf5, stamp=STAMP)
