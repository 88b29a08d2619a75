"""Test configuration: 8 fake CPU devices and a persistent compilation cache, set once.

XLA_FLAGS must be set before jax is first imported, so this runs at collection time.
"""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import pytest  # noqa: E402

_REPO = pathlib.Path(__file__).resolve().parent.parent
jax.config.update("jax_compilation_cache_dir", str(_REPO / ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import numpy as np  # noqa: E402

from lvm_jax import models  # noqa: E402
from lvm_jax import shared_paths  # noqa: E402


@pytest.fixture(scope="session")
def reference_dir():
  d = shared_paths.reference_dir()
  if d is None:
    pytest.skip("../shared/reference is absent (a user's clone); CI always has it")
  return d


@pytest.fixture(scope="session")
def desi_dir():
  d = shared_paths.desi_cutouts_dir()
  if d is None or not d.is_dir():
    pytest.skip("../shared/data/desi_dr9_south is absent (a user's clone); CI always has it")
  return d


@pytest.fixture(scope="session")
def tiny():
  """(config, module, params) of the `tiny` preset with non-default, deterministic weights."""
  config = models.preset("tiny")
  module = models.build(config)
  params = models.init_params(module, jax.random.key(0))
  # Perturb every leaf (LayerNorm scales, biases too) so that layout mistakes show.
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda a: a + 0.02 * rng.standard_normal(a.shape, np.float32), params)
  return config, module, params
