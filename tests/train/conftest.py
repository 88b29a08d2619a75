"""Shared fixtures: a small simulated survey (made once per session) and a shrunk tiny config."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest


# The tiny preset shrunk so a train step compiles in seconds on 2 cores: 32 px, 16 channels,
# one block per stage (the shapes stay valid: 32 = patch 4 x 2^3).
SMALL = [
    "model.img_size=32", "model.embed_dim=16", "model.depths=[1,1,1,1]",
    "model.num_heads=[1,1,2,2]", "model.window_size=4",
    "batch_size=8", "num_steps=6", "data.val_size=16", "data.prefetch=2",
    "eval.batch_size=16", "eval.every_steps=1000", "log.every_steps=1", "log.progress=False",
    "log.gallery_every_steps=0", "log.tensorboard=False", "checkpoint.every_steps=3",
    "checkpoint.async_save=True", "optimizer.warmup_steps=2",
]


def small_config(survey_glob: str, *extra: str):
  from lvm_jax import config as config_lib
  return config_lib.load_config("pretrain:tiny", [*SMALL, f"data.files={survey_glob}", *extra])


@pytest.fixture(scope="session")
def survey_glob(tmp_path_factory) -> str:
  from lvm_jax.sim import write_survey
  out = tmp_path_factory.mktemp("train_survey")
  write_survey(out, n=48, seed=3, workers=2)
  return str(out / "*.h5")


def subprocess_env(repo: pathlib.Path, devices: int = 8,
                   threads_one: bool = False) -> dict[str, str]:
  """The environment of a `lvm-jax train` child: CPU devices, the shared compilation cache, and
  the parent's other XLA flags and optimisation level (inherited from tests/conftest.py, so that
  both compile and round alike)."""
  env = dict(os.environ)
  kept = [f for f in env.get("XLA_FLAGS", "").split()
          if not f.startswith("--xla_force_host_platform_device_count")]
  flags = " ".join([*kept, f"--xla_force_host_platform_device_count={devices}"])
  if threads_one:
    flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
  env.update(XLA_FLAGS=flags, JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=str(repo / ".jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             PYTHONPATH=str(repo) + os.pathsep + env.get("PYTHONPATH", ""))
  return env


@pytest.fixture(scope="session")
def straight_run(make_config, tmp_path_factory):
  """6 uninterrupted steps (prefetch on, no evaluators): (workdir, summary)."""
  from lvm_jax.train import trainer
  workdir = tmp_path_factory.mktemp("straight")
  summary = trainer.train_and_evaluate(make_config("eval.evaluators=[]"), workdir)
  return workdir, summary


@pytest.fixture(scope="session")
def make_config(survey_glob):
  """make_config(*overrides) -> the shrunk tiny ConfigDict reading the session's survey."""
  return lambda *extra: small_config(survey_glob, *extra)


@pytest.fixture(scope="session")
def child_env(repo_root):
  return lambda *args, **kwargs: subprocess_env(repo_root, *args, **kwargs)


@pytest.fixture(scope="session")
def repo(repo_root):
  return repo_root


PYTHON = sys.executable


def train_command(workdir, survey_glob, *extra: str) -> list[str]:
  """argv of `lvm-jax train` on the shrunk tiny config (overrides as --config.key=value)."""
  overrides = [f"--config.{o}" for o in (*SMALL, f"data.files={survey_glob}", *extra)]
  return [PYTHON, "-m", "lvm_jax.cli", "train", "--config", "pretrain:tiny",
          "--workdir", str(workdir), *overrides]


@pytest.fixture(scope="session")
def train_argv(survey_glob):
  return lambda workdir, *extra: train_command(workdir, survey_glob, *extra)
