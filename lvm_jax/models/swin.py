"""Swin Transformer layers of the SUNet encoder and decoder (Flax Linen, NHWC token grids).

Parameter names mirror the PyTorch module names (`attn.qkv`, `mlp.fc1`, `norm1`, ...) so that
`lvm_jax.convert` maps the published state dict mechanically.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lvm_jax.models import precision
from lvm_jax.models import upsample
from lvm_jax.models import windows

LN_EPSILON = 1e-5  # PyTorch's default; Flax's default (1e-6) would break parity.


def layer_norm(dtype: Any, name: str | None = None) -> nn.LayerNorm:
  """LayerNorm as PyTorch defines it: eps 1e-5, two-pass float32 statistics."""
  return nn.LayerNorm(epsilon=LN_EPSILON, dtype=dtype, param_dtype=precision.PARAM_DTYPE,
                      use_fast_variance=False, name=name)


def gelu(x: jnp.ndarray) -> jnp.ndarray:
  """The exact (erf) GELU of torch.nn.GELU(), not the tanh approximation."""
  return nn.gelu(x, approximate=False)


class DropPath(nn.Module):
  """Stochastic depth: drops a whole residual branch per sample with probability `rate`.

  `rate` is a float or a traced scalar (the blocks of a scanned stage).
  """
  rate: Any

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if not train or (isinstance(self.rate, float) and self.rate == 0.0):
      return x
    keep = 1.0 - self.rate
    rng = self.make_rng("dropout")
    mask = jax.random.bernoulli(rng, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class Mlp(nn.Module):
  """fc1 -> exact GELU -> dropout -> fc2 -> dropout."""
  hidden: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    out = x.shape[-1]
    x = nn.Dense(self.hidden, dtype=self.dtype, param_dtype=precision.PARAM_DTYPE, name="fc1")(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(gelu(x))
    x = nn.Dense(out, dtype=self.dtype, param_dtype=precision.PARAM_DTYPE, name="fc2")(x)
    return nn.Dropout(self.dropout, deterministic=not train)(x)


class WindowAttention(nn.Module):
  """Multi-head self-attention inside windows, with the relative position bias.

  Input (B·nW, window², C); `mask` (nW, window², window²) or None.
  """
  num_heads: int
  window: int
  qkv_bias: bool = True
  qk_scale: float | None = None
  attn_dropout: float = 0.0
  proj_dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask, train: bool) -> jnp.ndarray:
    bw, n, c = x.shape
    head_dim = c // self.num_heads
    scale = self.qk_scale if self.qk_scale else head_dim ** -0.5
    table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                       ((2 * self.window - 1) ** 2, self.num_heads), precision.PARAM_DTYPE)
    qkv = nn.Dense(3 * c, use_bias=self.qkv_bias, dtype=self.dtype,
                   param_dtype=precision.PARAM_DTYPE, name="qkv")(x)
    qkv = qkv.reshape(bw, n, 3, self.num_heads, head_dim)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B·nW, N, heads, head_dim)
    q = q * jnp.asarray(scale, q.dtype)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=precision.STATS_DTYPE)
    # Gathering table[index] as a one-hot matmul: its gradient is a matmul rather than a
    # scatter-add (twice the CPU training-step speed here); HIGHEST keeps the bias exact on GPUs.
    onehot = windows.relative_position_onehot(self.window)
    bias = jnp.matmul(onehot, table, precision=jax.lax.Precision.HIGHEST)
    bias = bias.reshape(n, n, self.num_heads).transpose(2, 0, 1)
    logits = logits + bias[None].astype(precision.STATS_DTYPE)
    if mask is not None:
      nw = mask.shape[0]
      logits = logits.reshape(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None]
      logits = logits.reshape(bw, self.num_heads, n, n)
    probs = jax.nn.softmax(logits, axis=-1)
    probs = nn.Dropout(self.attn_dropout, deterministic=not train)(probs)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(self.dtype), v)
    out = out.reshape(bw, n, c)
    out = nn.Dense(c, dtype=self.dtype, param_dtype=precision.PARAM_DTYPE, name="proj")(out)
    return nn.Dropout(self.proj_dropout, deterministic=not train)(out)


class SwinBlock(nn.Module):
  """x + attn(norm1(x)) with cyclic shift, then x + mlp(norm2(x)). Input (B, H, W, C).

  `window`/`shift` are the effective values after the window clamp.
  """
  num_heads: int
  window: int
  shift: int
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  qk_scale: float | None = None
  dropout: float = 0.0
  attn_dropout: float = 0.0
  drop_path: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    _, h, w, c = x.shape
    shortcut = x
    y = layer_norm(self.dtype, "norm1")(x)
    if self.shift:
      y = jnp.roll(y, (-self.shift, -self.shift), axis=(1, 2))
    mask = windows.shift_attention_mask(h, self.window, self.shift)
    y = windows.window_partition(y, self.window)
    y = WindowAttention(self.num_heads, self.window, self.qkv_bias, self.qk_scale,
                        self.attn_dropout, self.dropout, self.dtype, name="attn")(
                            y, None if mask is None else jnp.asarray(mask), train)
    y = windows.window_reverse(y, self.window, h, w)
    if self.shift:
      y = jnp.roll(y, (self.shift, self.shift), axis=(1, 2))
    x = shortcut + DropPath(self.drop_path)(y, train)
    y = layer_norm(self.dtype, "norm2")(x)
    y = Mlp(int(c * self.mlp_ratio), self.dropout, self.dtype, name="mlp")(y, train)
    return x + DropPath(self.drop_path)(y, train)


class PatchMerging(nn.Module):
  """(B, H, W, C) -> (B, H/2, W/2, 2C): 2x2 neighbours concatenated, LayerNorm, Linear."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    c = x.shape[-1]
    x = jnp.concatenate(
        [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
    x = layer_norm(self.dtype, "norm")(x)
    return nn.Dense(2 * c, use_bias=False, dtype=self.dtype,
                    param_dtype=precision.PARAM_DTYPE, name="reduction")(x)


class SwinStage(nn.Module):
  """`depth` Swin blocks at one resolution; odd blocks shift by window//2 (before the clamp).

  `resample` closes the stage: "merge" (encoder PatchMerging, named `downsample`), "upsample"
  (decoder dual up-sampling x2, named `upsample`) or "none". `remat` recomputes each block's
  activations in the backward pass (gradient checkpointing per Swin block). `scan` runs a
  stage of 4 or more (an even number of) blocks as a loop over block pairs, so that XLA
  compiles one pair instead of every block (the 100M models: 7 pairs instead of 56 blocks);
  the function and the parameter tree are the same either way.
  """
  depth: int
  num_heads: int
  window_size: int
  mlp_ratio: float
  qkv_bias: bool
  qk_scale: float | None
  dropout: float
  attn_dropout: float
  drop_path: Sequence[float]
  resample: str = "none"
  remat: bool = False
  dtype: Any = jnp.float32
  scan: bool = True

  def _block(self, i: int, resolution: int, drop_path, name: str | None) -> SwinBlock:
    """An unbound block of index `i` (for `apply` with its parameters)."""
    shift = 0 if i % 2 == 0 else self.window_size // 2
    window, shift = windows.effective_window(resolution, self.window_size, shift)
    return SwinBlock(self.num_heads, window, shift, self.mlp_ratio, self.qkv_bias, self.qk_scale,
                     self.dropout, self.attn_dropout, drop_path, self.dtype, name=name,
                     parent=None)

  def _scanned(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    """The blocks as a `lax.scan` over (unshifted, shifted) pairs: one pair is compiled.

    Parameters stay per block (`blocks_i`, as the checkpoints and the converter know them);
    they are stacked here, inside the step. Stochastic depth draws from the stage's dropout
    stream folded with the block index.
    """
    resolution = x.shape[1]
    params = self.variables["params"]
    stack = lambda idx: jax.tree_util.tree_map(
        lambda *a: jnp.stack(a), *[params[f"blocks_{i}"] for i in idx])
    even, odd = range(0, self.depth, 2), range(1, self.depth, 2)
    rates = jnp.asarray(self.drop_path, jnp.float32).reshape(-1, 2)
    base = self.make_rng("dropout") if train else jax.random.key(0)
    keys = jax.random.split(base, self.depth).reshape(-1, 2)
    blocks = [self._block(i, resolution, 0.0, None) for i in (0, 1)]

    def pair(x, xs):
      p_even, p_odd, rate, key = xs
      for j, p in enumerate((p_even, p_odd)):
        block = blocks[j].clone(drop_path=rate[j])
        x = block.apply({"params": p}, x, train, rngs={"dropout": key[j]} if train else None)
      return x, None

    if self.remat:
      pair = jax.checkpoint(pair)
    x, _ = jax.lax.scan(pair, x, (stack(even), stack(odd), rates, keys))
    return x

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    resolution = x.shape[1]
    if self.scan and self.depth >= 4 and self.depth % 2 == 0 and not self.is_initializing():
      x = self._scanned(x, train)
    else:
      # Rematerialised blocks keep only their inputs for the backward pass (same names).
      block = nn.remat(SwinBlock, static_argnums=(2,)) if self.remat else SwinBlock
      for i in range(self.depth):
        shift = 0 if i % 2 == 0 else self.window_size // 2
        window, shift = windows.effective_window(resolution, self.window_size, shift)
        x = block(self.num_heads, window, shift, self.mlp_ratio, self.qkv_bias, self.qk_scale,
                  self.dropout, self.attn_dropout, self.drop_path[i], self.dtype,
                  name=f"blocks_{i}")(x, train)
    if self.resample == "merge":
      return PatchMerging(self.dtype, name="downsample")(x)
    if self.resample == "upsample":
      return upsample.DualUpSample(2, x.shape[-1] // 2, self.dtype, name="upsample")(x)
    if self.resample != "none":
      raise ValueError(f"unknown resample {self.resample!r}")
    return x
