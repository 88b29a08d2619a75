"""Parameter initialisation as the original SUNet does it, without compiling the forward pass.

SUNet's `_init_weights`: Linear weights truncated-normal with std 0.02 and zero bias; LayerNorm
weight 1, bias 0; relative-position tables truncated-normal 0.02; convolutions keep PyTorch's
default (kaiming-uniform with a = sqrt(5), i.e. U(±1/sqrt(fan_in))); PReLU slopes 0.25.
Convolution biases start at zero here (PyTorch draws them from the same uniform).

Shapes come from `jax.eval_shape(model.init)` (tracing only); values are drawn with NumPy on the
host. On 2 CPU cores `jax.jit(model.init)` of the tiny preset spends ~30 s compiling RNG ops;
this takes well under a second (a few seconds for the 100M models).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

LINEAR_STD = 0.02


def abstract_params(model, batch: int = 1):
  """The parameter tree of `model` as `jax.ShapeDtypeStruct`s (nothing is computed)."""
  images = jax.ShapeDtypeStruct((batch, model.img_size, model.img_size, model.in_chans),
                                jnp.float32)
  return jax.eval_shape(lambda r, x: model.init(r, x, train=False)["params"],
                        jax.random.key(0), images)


def _leaf_init(path: tuple[str, ...], shape: tuple[int, ...],
               rng: np.random.Generator) -> np.ndarray:
  leaf = path[-1]
  if leaf == "kernel" and len(shape) == 4:  # Conv (kh, kw, in, out).
    bound = 1.0 / math.sqrt(shape[0] * shape[1] * shape[2])
    return rng.uniform(-bound, bound, shape).astype(np.float32)
  if leaf in ("kernel", "relative_position_bias_table"):
    # PyTorch's trunc_normal_(std=.02) truncates at ±2 in absolute value, i.e. ±100 std.
    return np.clip(LINEAR_STD * rng.standard_normal(shape, np.float32), -2.0, 2.0)
  if leaf == "scale":
    return np.ones(shape, np.float32)
  if leaf == "bias":
    return np.zeros(shape, np.float32)
  if leaf in ("alpha", "prelu"):
    return np.full(shape, 0.25, np.float32)
  raise ValueError(f"no initialiser for parameter {'/'.join(path)}")


def _seed(rng: int | jax.Array) -> list[int]:
  if isinstance(rng, int):
    return [rng]
  data = jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
  return [int(v) for v in np.asarray(data).ravel()]


def init_params(model, rng: int | jax.Array, shardings=None):
  """Fresh float32 parameters of `model` from a seed (int) or a JAX key.

  Leaf i is drawn from `np.random.default_rng([*seed, i])`, so values do not depend on the
  device layout. `shardings` (a tree matching the parameters, e.g. NamedShardings) places each
  array sharded with `jax.make_array_from_callback`, every process materialising only what its
  devices hold; without it arrays land on the default device.
  """
  flat = traverse_util.flatten_dict(abstract_params(model))
  seed = _seed(rng)
  sharding_flat = (traverse_util.flatten_dict(shardings) if shardings is not None else {})
  out = {}
  for i, (path, spec) in enumerate(flat.items()):
    value = _leaf_init(path, spec.shape, np.random.default_rng([*seed, i]))
    sharding = sharding_flat.get(path)
    if sharding is None:
      out[path] = jnp.asarray(value)
    else:
      out[path] = jax.make_array_from_callback(spec.shape, sharding, lambda idx, v=value: v[idx])
  return traverse_util.unflatten_dict(out)
