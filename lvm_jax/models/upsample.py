"""SUNet's dual up-sampling: a pixel-shuffle branch and a bilinear branch, merged by a 1x1 conv.

All tensors NHWC. Parameter names follow the PyTorch `nn.Sequential` indices (`up_p_0` is
`up_p.0`, ...), so the published weights map one to one.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lvm_jax.models import precision


class PReLU(nn.Module):
  """PReLU with a single learned slope (torch.nn.PReLU() default, init 0.25), shape (1,)."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    alpha = self.param("alpha", nn.initializers.constant(0.25), (1,), precision.PARAM_DTYPE)
    return jnp.where(x >= 0, x, alpha.astype(x.dtype) * x)


def pixel_shuffle(x: jnp.ndarray, r: int) -> jnp.ndarray:
  """(B, H, W, C·r²) -> (B, H·r, W·r, C), channel c·r² + i·r + j going to pixel (h·r+i, w·r+j)."""
  b, h, w, crr = x.shape
  c = crr // (r * r)
  x = x.reshape(b, h, w, c, r, r).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, h * r, w * r, c)


def _bilinear_axis(x: jnp.ndarray, r: int, axis: int) -> jnp.ndarray:
  """Bilinear x r along `axis` (half-pixel centres, edges clamped): a new axis of size r after it.

  Output sample k of input sample i sits at i + (k + 0.5) / r − 0.5: a blend of sample i with
  its lower (k < r/2) or upper neighbour, the neighbour replaced by sample i itself at the edges.
  """
  n = x.shape[axis]
  first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
  last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
  lower = jnp.concatenate([first, jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
  upper = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), last], axis)
  outs = []
  for k in range(r):
    offset = (k + 0.5) / r - 0.5
    neighbour = lower if offset < 0 else upper
    d = abs(offset)
    outs.append((1.0 - d) * x + d * neighbour)
  return jnp.stack(outs, axis=axis + 1)


def bilinear_upsample_blocks(x: jnp.ndarray, r: int) -> jnp.ndarray:
  """Bilinear x r of (B, H, W, C) as (B, H, r, W, r, C) (reshape to (B, H·r, W·r, C))."""
  return _bilinear_axis(_bilinear_axis(x, r, 2), r, 1)


def bilinear_upsample(x: jnp.ndarray, r: int) -> jnp.ndarray:
  """Bilinear x r with half-pixel centres: PyTorch's `align_corners=False` (edges clamped)."""
  b, h, w, c = x.shape
  return bilinear_upsample_blocks(x, r).reshape(b, h * r, w * r, c)


class Conv1x1(nn.Module):
  """A 1x1 convolution (kernel (1, 1, in, out) as nn.Conv names it, bias (out,)) as a matmul.

  `matrix()` is the (in, out) kernel, for callers that compose it with other linear maps.
  """
  in_features: int
  features: int
  use_bias: bool
  dtype: Any = jnp.float32

  def setup(self):
    pdt = precision.PARAM_DTYPE
    self.kernel = self.param("kernel", nn.initializers.lecun_normal(),
                             (1, 1, self.in_features, self.features), pdt)
    if self.use_bias:
      self.bias = self.param("bias", nn.initializers.zeros, (self.features,), pdt)

  def matrix(self) -> jnp.ndarray:
    return self.kernel[0, 0]

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    y = jnp.dot(x.astype(self.dtype), self.kernel[0, 0].astype(self.dtype))
    return y + self.bias.astype(self.dtype) if self.use_bias else y


class DualUpSample(nn.Module):
  """Up-sample (B, H, W, C_in) by `factor` to (B, H·f, W·f, `out_channels`).

  factor 2 (decoder stages, out = C/2): p = conv(C→2C) · PReLU · shuffle(2) · conv(C/2→C/2);
  factor 4 (final `up`, out = C):        p = conv(C→16C) · PReLU · shuffle(4) · conv(C→C);
  both: b = conv(C→C, bias) · PReLU · bilinear · conv(C→out); result conv(concat[p, b] → out).

  Computed in an equivalent order: the 1x1 convs after the shuffle and after the bilinear
  resize act per pixel and linearly, so they commute with both and run at the input
  resolution, composed with the halves of the merging conv (concat · conv = sum of two
  products); only the final sum is at the output resolution. Same parameters, same function
  (up to float rounding), f² fewer multiply-adds in those convs and no concatenation.
  """
  factor: int
  out_channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    bsz, h, w, c = x.shape
    f, out = self.factor, self.out_channels
    dt = self.dtype
    hi = jax.lax.Precision.HIGHEST  # weight products: exact in float32 on every backend
    merge = Conv1x1(2 * out, out, False, dt, name="conv").matrix()         # (2·out, out)
    # Branch p: columns of up_p_0 reordered from (c, i, j) to (i, j, c), so that the shuffle's
    # sub-pixel (i, j) of channel c is a contiguous group; then up_p_3 · merge[:out] per group.
    p_in = Conv1x1(c, out * f * f, False, dt, name="up_p_0").matrix()      # (C, out·f²)
    p_in = p_in.reshape(c, out, f, f).transpose(0, 2, 3, 1).reshape(c, f * f * out)
    p_out = jnp.dot(Conv1x1(out, out, False, dt, name="up_p_3").matrix(), merge[:out],
                    precision=hi)
    p = PReLU(name="up_p_1")(jnp.dot(x.astype(dt), p_in.astype(dt)))
    p = jnp.dot(p.reshape(bsz, h, w, f, f, out), p_out.astype(dt))           # (B, H, W, i, j, out)
    # Branch b: up_b_3 · merge[out:] before the (linear, per-channel) bilinear resize.
    b = PReLU(name="up_b_1")(Conv1x1(c, c, True, dt, name="up_b_0")(x))
    b_out = jnp.dot(Conv1x1(c, out, False, dt, name="up_b_3").matrix(), merge[out:], precision=hi)
    b = bilinear_upsample_blocks(jnp.dot(b, b_out.astype(dt)), f)           # (B, H, i, W, j, out)
    y = p.transpose(0, 1, 3, 2, 4, 5) + b
    return y.reshape(bsz, h * f, w * f, out)
