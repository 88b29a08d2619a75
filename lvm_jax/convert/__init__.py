"""Loading the published PyTorch weights (no torch needed) into lvm-jax parameters.

    state = lvm_jax.convert.load_torch_checkpoint("lvm.pth")        # name -> np.ndarray
    params = lvm_jax.convert.params_from_torch(state, lvm_jax.models.preset("lvm_100m"))

CLI: `lvm-jax convert-torch --preset lvm_100m IN.pth OUT_DIR` writes an Orbax checkpoint.
"""

from lvm_jax.convert.readers import CheckpointReadError, load_torch_checkpoint, strip_prefixes
from lvm_jax.convert.torch_to_flax import ConversionError, params_from_torch, params_to_torch

__all__ = ["CheckpointReadError", "ConversionError", "load_torch_checkpoint", "params_from_torch",
           "params_to_torch", "strip_prefixes"]
