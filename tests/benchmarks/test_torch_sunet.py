"""The PyTorch baseline of benchmarks/vs_torch.py is the published network (where torch exists).

CI has no torch (it is the optional `bench` extra): there these skip, and the parity of lvm-jax
itself is tests/models/test_parity.py; vs_torch.py checks both forwards agree before timing.
"""

import importlib
import json
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")


from lvm_jax import convert, models  # noqa: E402

pytestmark = pytest.mark.needs_shared


def _relative(a, b):
  return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def torch_sunet(repo_root):
  """benchmarks/torch_sunet.py, the PyTorch reference SUNet (not part of the package)."""
  sys.path.insert(0, str(repo_root / "benchmarks"))
  try:
    return importlib.import_module("torch_sunet")
  finally:
    sys.path.remove(str(repo_root / "benchmarks"))


def test_reference_outputs_to_1e5(torch_sunet, reference_dir):
  model, x, y = torch_sunet.from_reference_npz(reference_dir / "sunet_tiny128.npz")
  names = [line.split("\t")[0] for line in
           (reference_dir / "sunet_tiny128_keys.txt").read_text().splitlines() if line]
  assert sorted(model.state_dict()) == sorted(names)  # the published names and buffers
  with torch.inference_mode():
    assert _relative(model(torch.from_numpy(x)).numpy(), y) <= 1e-5


def test_weights_shared_through_the_converter(torch_sunet, reference_dir):
  """Reference weights -> lvm-jax -> params_to_torch -> PyTorch: the same outputs."""
  path = reference_dir / "sunet_tiny128.npz"
  meta = json.loads(str(np.load(path)["meta"]))
  config = dict(models.PRESETS["sunet_100m"], **meta["config"], head=meta["variant"])
  params = convert.params_from_torch(convert.load_torch_checkpoint(path), config)
  model = torch_sunet.SUNet(**torch_sunet.config_of(config))
  missing, unexpected = model.load_state_dict(
      {k: torch.from_numpy(np.array(v)) for k, v in convert.params_to_torch(params).items()},
      strict=False)
  assert not unexpected
  assert all(k.endswith(("relative_position_index", "attn_mask")) for k in missing)
  x = np.load(path)["input_nchw"]
  with jax.default_matmul_precision("highest"):
    ours = np.asarray(models.build(config).apply({"params": params}, x.transpose(0, 2, 3, 1))[
        "reconstruction"]).transpose(0, 3, 1, 2)
  with torch.inference_mode():
    theirs = model.eval()(torch.from_numpy(x)).numpy()
  assert _relative(ours, theirs) <= 1e-5
