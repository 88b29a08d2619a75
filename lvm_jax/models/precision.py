"""The mixed-precision policy of lvm-jax.

* Parameters are always float32 (`param_dtype`); optimizer moments too.
* `dtype` (the config's compute dtype, "float32" or "bfloat16") is the dtype of matmul and
  convolution *inputs* and of the activations between layers. With "bfloat16" every Dense,
  Conv and attention product is a bf16 x bf16 dot.
* Accumulations that decide numerical stability stay float32 whatever `dtype` is:
  attention logits (q·k with `preferred_element_type=float32`; `qk_scale=8` of the published
  model makes them large), the relative-position bias (looked up from its float32 table with
  a HIGHEST-precision one-hot product), the kernels composed from float32 parameters (dual
  up-sampling, patch embedding; HIGHEST-precision products) and shift mask, the softmax, LayerNorm
  statistics (mean and variance) and every loss.
* float32 is the default, and what the parity tests use on CPU; bf16 is for GPUs and TPUs.
"""

from __future__ import annotations

import jax.numpy as jnp

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

PARAM_DTYPE = jnp.float32
STATS_DTYPE = jnp.float32


def compute_dtype(name: str):
  """The jnp dtype for a config's `dtype` string; raises on anything else."""
  try:
    return _DTYPES[name]
  except KeyError:
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None
