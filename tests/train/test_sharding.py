"""Parameter and optimizer-state shardings of the tiny model against golden files."""

import json
import os
import pathlib

import jax
import pytest

from lvm_jax import models
from lvm_jax import config as config_lib
from lvm_jax.train import optimizer, sharding

GOLDEN = pathlib.Path(__file__).parent / "golden"
MESHES = {"8x1": [8, 1], "2x4": [2, 4], "1x8": [1, 8]}
UPDATE = os.environ.get("LVM_JAX_UPDATE_GOLDENS") == "1"


def _shardings(mesh_shape):
  config = config_lib.load_config("pretrain:tiny")
  config.mesh.shape = mesh_shape
  mesh = sharding.make_mesh(config.mesh.shape, config.mesh.axes)
  abstract = models.abstract_params(models.build(config.model))
  params = sharding.tree_shardings(abstract, mesh, config.sharding)
  tx, _ = optimizer.make_optimizer(config.optimizer, 100)
  opt = sharding.tree_shardings(jax.eval_shape(tx.init, abstract), mesh, config.sharding)
  return config, mesh, params, opt


@pytest.mark.cpu_only
@pytest.mark.parametrize("name", sorted(MESHES))
def test_param_shardings_match_golden(name):
  _, _, params, _ = _shardings(MESHES[name])
  got = sharding.describe(params)
  path = GOLDEN / f"tiny_params_{name}.json"
  if UPDATE:
    path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
  assert got == json.loads(path.read_text())


@pytest.mark.cpu_only
def test_policy_properties():
  config, mesh, params, opt = _shardings([2, 4])
  specs = sharding.describe(params)
  # Relative-position tables are replicated by rule; 1-D leaves (norms, biases) too (small).
  assert all(v == "()" for k, v in specs.items() if "relative_position_bias_table" in k)
  assert all(v == "()" for k, v in specs.items() if k.endswith("['bias']") or "norm" in k)
  # A large kernel is split on its largest divisible dim along fsdp.
  qkv = specs["['layers_0']['blocks_0']['attn']['qkv']['kernel']"]
  assert qkv == "(None, 'fsdp')"
  # Adam moments mirror the parameters; the step count is replicated.
  opt_specs = sharding.describe(opt)
  mu = {k.split("mu")[-1]: v for k, v in opt_specs.items() if ".mu" in k}
  assert mu and all(specs[k] == v for k, v in mu.items())
  assert all(v == "()" for k, v in opt_specs.items() if "count" in k)
  batch = sharding.batch_sharding(mesh, config.sharding)
  assert batch.spec == jax.sharding.PartitionSpec(("data", "fsdp"))


def test_mesh_fills_the_rest():
  mesh = sharding.make_mesh([-1, 2], ["data", "fsdp"])
  assert dict(mesh.shape) == {"data": jax.device_count() // 2, "fsdp": 2}
  with pytest.raises(ValueError):
    sharding.make_mesh([jax.device_count() + 1, 1], ["data", "fsdp"])
