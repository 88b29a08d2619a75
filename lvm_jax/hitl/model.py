"""The HITL classifier: one hidden layer of 2048 ReLU units on frozen embeddings (Fu et al. 2024).

Trained from scratch each round with Adam on a class-balanced binary cross-entropy. The
hidden kernel starts nested across input widths: row j (input coordinate j) is drawn from its
own key, with LeCun's variance counted in input power (1 / mean squared input norm) rather than
in columns. The fast model on the first k principal components therefore starts from the first
k rows of the exact model's initialisation and, the tail components carrying little variance,
trains along nearly the same path: on the simulated survey's embeddings, per seed, fast and
exact AUPR then differ by the tail's information rather than by the initialisation
(benchmarks/hitl_round.py, README "Human in the loop").

The labelled rows are padded to a bucket (16, 32, 64, ...) with a mask, so every round whose
label count falls in the same bucket reuses one compiled program. Scoring runs over fixed-size
blocks of rows (lax.map) so the (rows, 2048) hidden activations stay in cache; the fast path
scores in bfloat16 with float32 accumulation.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

# Times each jitted function was traced (a Python side effect runs only while tracing).
TRACE_COUNTS: collections.Counter[str] = collections.Counter()

SCORE_BLOCK_ROWS = 1024

# Adam's epsilon. The class-balanced loss is a mean, so most gradients are far below 1e-2:
# with the usual 1e-8 Adam moves every weight by ~learning_rate per step whatever its gradient
# (sign descent), which fits the few labels through low-variance input directions and makes
# training depend on the input basis. At 1e-2 small gradients get SGD-like steps and training
# is closer to rotation-invariant: on a 50,000-object look-alike mixture (benchmarks/
# hitl_round.py, 2 label sets) the exact 768-d model's AUPR rose from 0.965/0.920 to
# 0.992/0.978 and the 128-component fast model's from 0.982/0.976 to 0.991/0.989.
ADAM_EPS = 1e-2


class ScoreMLP(nn.Module):
  """(B, dim) inputs -> (B,) logits of the positive class."""
  hidden: int = 2048

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
    return nn.Dense(1, name="out")(h)[..., 0]


def bucket_size(n: int, smallest: int = 16) -> int:
  """The padded label count: the smallest power of two >= n, at least `smallest`."""
  size = smallest
  while size < n:
    size *= 2
  return size


# Inputs sampled to measure the input power (the mean squared norm of a classifier input).
_POWER_ROWS = 16_384
_KERNEL_STREAM = 0x6b65726e  # folded into the init key for the hidden kernel's stream


def input_power(inputs: np.ndarray) -> float:
  """Mean squared norm of the (N, dim) classifier inputs, over <= 16,384 evenly spaced rows.

  For Session inputs (centred, unit RMS per embedding dimension) it is D for the exact input and
  the variance the first k principal components keep for the fast one.
  """
  sample = np.ascontiguousarray(inputs[::max(1, len(inputs) // _POWER_ROWS)], np.float32)
  return float(np.vdot(sample, sample)) / max(1, len(sample)) or 1.0


def hidden_kernel(key: jax.Array, dim: int, hidden: int, power) -> jax.Array:
  """(dim, hidden) float32 initial hidden kernel, nested across `dim`.

  Row j is a truncated normal (+-2 sigma) drawn from fold_in(key, j) with variance 1 / power
  (LeCun's fan-in rule with the fan-in measured as input power), so the kernel for the first k
  inputs is the first k rows of the kernel for more inputs of the same power scale.
  """
  rows = jax.vmap(lambda j: jax.random.truncated_normal(
      jax.random.fold_in(key, j), -2.0, 2.0, (hidden,), jnp.float32))(jnp.arange(dim))
  # 0.8796: the standard deviation of a unit normal truncated at +-2 (as flax's variance_scaling)
  return rows * (jax.lax.rsqrt(jnp.asarray(power, jnp.float32)) / 0.87962566103423978)


def init_params(key: jax.Array, dim: int, hidden: int, power: float | None = None):
  """Flax parameters of a fresh ScoreMLP for `dim` inputs of the given power (default dim)."""
  params = ScoreMLP(hidden).init(key, jnp.zeros((1, dim), jnp.float32))
  kernel = hidden_kernel(jax.random.fold_in(key, _KERNEL_STREAM), dim, hidden,
                         float(dim) if power is None else power)
  return _with_hidden_kernel(params, kernel)


def _with_hidden_kernel(params, kernel):
  inner = dict(params["params"])
  inner["hidden"] = dict(inner["hidden"], kernel=kernel)
  return {**params, "params": inner}


def _balanced_weights(y: jax.Array, mask: jax.Array) -> jax.Array:
  """(B,) per-row loss weights: each present class carries half the total weight."""
  n_pos = jnp.sum(mask * y)
  n_neg = jnp.sum(mask * (1.0 - y))
  both = (n_pos > 0) & (n_neg > 0)
  share = jnp.where(both, 0.5, 1.0)
  w = jnp.where(y > 0, share / jnp.maximum(n_pos, 1.0), share / jnp.maximum(n_neg, 1.0))
  return mask * w


@functools.partial(jax.jit, static_argnames=("hidden", "steps", "learning_rate", "adam_eps"))
def fit(key: jax.Array, x: jax.Array, y: jax.Array, mask: jax.Array, power=None, *,
        hidden: int, steps: int, learning_rate: float, adam_eps: float = ADAM_EPS):
  """Trains a fresh ScoreMLP on padded labels.

  Args:
    key: PRNG key of the initialisation.
    x: (B, dim) float32 inputs, B a bucket size; padding rows are ignored.
    y: (B,) float32 labels in {0, 1}.
    mask: (B,) float32, 1 for real rows and 0 for padding.
    power: mean squared norm of all objects' inputs (`input_power`), scales the hidden
      kernel's initialisation; None: dim (unit variance per input).
    hidden, steps, learning_rate: model width and full-batch Adam schedule.
    adam_eps: Adam's epsilon (see ADAM_EPS).

  Returns:
    The trained parameters.
  """
  TRACE_COUNTS["fit"] += 1
  model = ScoreMLP(hidden)
  params = model.init(key, x[:1])
  params = _with_hidden_kernel(params, hidden_kernel(
      jax.random.fold_in(key, _KERNEL_STREAM), x.shape[1], hidden,
      float(x.shape[1]) if power is None else power))
  tx = optax.adam(learning_rate, eps=adam_eps)
  weights = _balanced_weights(y, mask)

  def loss(p):
    return jnp.sum(weights * optax.sigmoid_binary_cross_entropy(model.apply(p, x), y))

  def step(_, carry):
    p, opt_state = carry
    updates, opt_state = tx.update(jax.grad(loss)(p), opt_state, p)
    return optax.apply_updates(p, updates), opt_state

  params, _ = jax.lax.fori_loop(0, steps, step, (params, tx.init(params)))
  return params


@functools.partial(jax.jit, static_argnames=("dtype",))
def _score_blocks(params, blocks: jax.Array, dtype) -> jax.Array:
  """(nb, rows, dim) inputs -> (nb, rows) probabilities, hidden layer computed per block."""
  TRACE_COUNTS["score"] += 1
  w1 = params["params"]["hidden"]["kernel"].astype(dtype)
  b1 = params["params"]["hidden"]["bias"]
  w2 = params["params"]["out"]["kernel"][:, 0].astype(dtype)
  b2 = params["params"]["out"]["bias"][0]

  def block(x):
    h = jnp.dot(x, w1, preferred_element_type=jnp.float32) + b1
    h = jnp.maximum(h, 0.0).astype(dtype)
    return jax.nn.sigmoid(jnp.dot(h, w2, preferred_element_type=jnp.float32) + b2)

  return jax.lax.map(block, blocks.astype(dtype))


class BlockScorer:
  """Scores every object with a ScoreMLP; the inputs are laid out once in blocks.

  The blocks are split into one group per CPU core, each scored by its own call from a
  thread, since one XLA CPU call runs its block loop on a single core.

  Args:
    inputs: (N, dim) float32 classifier inputs.
    dtype: jnp.float32 (exact) or jnp.bfloat16 (fast: bfloat16 products, float32 sums).
    threads: parallel groups (default: the cores this process may use, at most 8).
  """

  def __init__(self, inputs: np.ndarray, dtype=jnp.float32, threads: int | None = None):
    n, dim = inputs.shape
    self.threads = threads or max(1, min(8, len(os.sched_getaffinity(0))))
    per_group = -(-n // (SCORE_BLOCK_ROWS * self.threads))
    padded = np.zeros((self.threads * per_group * SCORE_BLOCK_ROWS, dim), np.float32)
    padded[:n] = inputs
    blocks = padded.reshape(self.threads, per_group, SCORE_BLOCK_ROWS, dim)
    self.n = n
    self.dtype = dtype
    self.groups = [jnp.asarray(g, dtype) for g in blocks]
    self._pool = concurrent.futures.ThreadPoolExecutor(self.threads) if self.threads > 1 else None

  def __call__(self, params) -> np.ndarray:
    """(N,) float32 probability of the positive class."""
    run = lambda g: np.asarray(_score_blocks(params, g, self.dtype), np.float32)
    outs = list(self._pool.map(run, self.groups)) if self._pool else [run(self.groups[0])]
    return np.concatenate([o.reshape(-1) for o in outs])[:self.n]


def train(inputs: np.ndarray, rows: np.ndarray, labels: np.ndarray, key: jax.Array, *,
          hidden: int = 2048, steps: int = 100, learning_rate: float = 2e-3,
          adam_eps: float = ADAM_EPS):
  """Pads the labelled rows to a bucket and trains a fresh ScoreMLP.

  Args:
    inputs: (N, dim) classifier inputs.
    rows: (n,) indices of the labelled objects.
    labels: (n,) 0/1 labels.
    key: PRNG key of the initialisation.

  The hidden kernel's initialisation is scaled by the input power of all N objects
  (`input_power`), which nests the fast model's start inside the exact model's.

  Returns:
    Trained parameters.
  """
  size = bucket_size(len(rows))
  x = np.zeros((size, inputs.shape[1]), np.float32)
  y = np.zeros(size, np.float32)
  mask = np.zeros(size, np.float32)
  x[:len(rows)] = inputs[rows]
  y[:len(rows)] = labels
  mask[:len(rows)] = 1.0
  return fit(key, jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask),
             jnp.float32(input_power(inputs)), hidden=hidden, steps=steps,
             learning_rate=learning_rate, adam_eps=adam_eps)
