"""The wheel: it holds the packaged configs, and an installed copy (not the checkout) loads them."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

CONFIGS = ("pretrain", "downstream", "export", "detect")


def _pip(*args: str, cwd: pathlib.Path) -> None:
  out = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                       cwd=cwd, timeout=300)
  assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def wheel(repo_root, tmp_path_factory) -> pathlib.Path:
  """A wheel built without network from a copy of the sources (the checkout stays clean)."""
  pytest.importorskip("setuptools", minversion="70.1")
  src = tmp_path_factory.mktemp("src")
  shutil.copytree(repo_root / "lvm_jax", src / "lvm_jax",
                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(repo_root / name, src / name)
  out = tmp_path_factory.mktemp("wheel")
  _pip("wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out), cwd=src)
  (built,) = out.glob("lvm_jax-*.whl")
  return built


def test_wheel_holds_the_packaged_configs(wheel):
  names = set(zipfile.ZipFile(wheel).namelist())
  for config in CONFIGS:
    assert f"lvm_jax/configs/{config}.py" in names
  assert "lvm_jax/cli.py" in names and not any(n.startswith("tests/") for n in names)
  entry_points = zipfile.ZipFile(wheel).read(
      next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
  assert "lvm-jax = lvm_jax.cli:main" in entry_points


def test_installed_copy_loads_a_packaged_config(wheel, tmp_path):
  target = tmp_path / "site"
  _pip("install", "--no-deps", "--no-compile", "-q", "--target", str(target), str(wheel),
       cwd=tmp_path)
  empty = tmp_path / "cwd"
  empty.mkdir()
  code = ("import lvm_jax, lvm_jax.config as c\n"
          "config = c.load_config('pretrain:tiny')\n"
          "print(lvm_jax.__file__)\nprint(config.model.img_size)\nprint(','.join(c.names()))\n")
  env = {**os.environ, "PYTHONPATH": str(target)}
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=empty,
                       env=env, timeout=120)
  assert out.returncode == 0, out.stderr
  location, img_size, names = out.stdout.split()
  assert pathlib.Path(location).resolve().is_relative_to(target.resolve())
  assert int(img_size) == 64
  assert {f"{c}" for c in CONFIGS} <= set(names.split(","))
