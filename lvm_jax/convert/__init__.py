"""Loading the published PyTorch weights (no torch needed) into lvm-jax parameters.

    state = lvm_jax.convert.load_torch_checkpoint("lvm.pth")        # name -> np.ndarray
    params = lvm_jax.convert.params_from_torch(state, lvm_jax.models.preset("lvm_100m"))

CLI: `lvm-jax convert-torch --preset lvm_100m IN.pth OUT_DIR` writes an Orbax checkpoint.
Names resolve lazily, so `lvm-jax --help` (which imports `lvm_jax.convert.commands`) does not
import jax.
"""

import importlib

_EXPORTS = {
    "CheckpointReadError": "readers", "load_torch_checkpoint": "readers",
    "strip_prefixes": "readers", "ConversionError": "torch_to_flax",
    "params_from_torch": "torch_to_flax", "params_to_torch": "torch_to_flax",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f"lvm_jax.convert.{_EXPORTS[name]}"), name)
  raise AttributeError(f"module 'lvm_jax.convert' has no attribute {name!r}")
