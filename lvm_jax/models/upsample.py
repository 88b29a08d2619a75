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


def bilinear_upsample(x: jnp.ndarray, r: int) -> jnp.ndarray:
  """Bilinear x r with half-pixel centres: PyTorch's `align_corners=False` (edges clamped)."""
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, h * r, w * r, c), method="linear", antialias=False)


def conv1x1(features: int, use_bias: bool, dtype: Any, name: str) -> nn.Conv:
  return nn.Conv(features, (1, 1), use_bias=use_bias, dtype=dtype,
                 param_dtype=precision.PARAM_DTYPE, name=name)


class DualUpSample(nn.Module):
  """Up-sample (B, H, W, C_in) by `factor` to (B, H·f, W·f, `out_channels`).

  factor 2 (decoder stages, out = C/2): p = conv(C→2C) · PReLU · shuffle(2) · conv(C/2→C/2);
  factor 4 (final `up`, out = C):        p = conv(C→16C) · PReLU · shuffle(4) · conv(C→C);
  both: b = conv(C→C, bias) · PReLU · bilinear · conv(C→out); result conv(concat[p, b] → out).
  """
  factor: int
  out_channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    c = x.shape[-1]
    f, out = self.factor, self.out_channels
    p = conv1x1(out * f * f, False, self.dtype, "up_p_0")(x)
    p = pixel_shuffle(PReLU(name="up_p_1")(p), f)
    p = conv1x1(out, False, self.dtype, "up_p_3")(p)
    b = conv1x1(c, True, self.dtype, "up_b_0")(x)
    b = bilinear_upsample(PReLU(name="up_b_1")(b), f)
    b = conv1x1(out, False, self.dtype, "up_b_3")(b)
    return conv1x1(out, False, self.dtype, "conv")(jnp.concatenate([p, b], axis=-1))
