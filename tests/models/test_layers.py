"""Numerical conventions pinned against PyTorch's definitions."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax.models import swin
from lvm_jax.models import upsample


def test_layer_norm_epsilon_is_pytorch_default():
  # A tiny-variance input makes eps matter: variance 1e-6 ~ eps.
  x = (np.random.default_rng(0).normal(size=(4, 16)) * 1e-3).astype(np.float32)
  ln = swin.layer_norm(jnp.float32)
  params = ln.init(jax.random.key(0), x)
  y = np.asarray(ln.apply(params, x))
  mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
  assert np.abs(y - (x - mean) / np.sqrt(var + 1e-6)).max() > 1e-2
  assert swin.LN_EPSILON == 1e-5


def test_gelu_is_exact_erf():
  x = np.linspace(-4, 4, 101, dtype=np.float32)
  exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x], np.float32)
  y = np.asarray(swin.gelu(jnp.asarray(x)))
  np.testing.assert_allclose(y, exact, atol=1e-6)
  tanh = np.asarray(jax.nn.gelu(jnp.asarray(x), approximate=True))
  assert np.abs(tanh - exact).max() > 1e-4  # the approximation would be detectably different


def test_pixel_shuffle_channel_order():
  r, c, h, w = 2, 3, 2, 2
  x = np.arange(h * w * c * r * r, dtype=np.float32).reshape(1, h, w, c * r * r)
  y = np.asarray(upsample.pixel_shuffle(jnp.asarray(x), r))
  assert y.shape == (1, h * r, w * r, c)
  for ch in range(c):
    for i in range(r):
      for j in range(r):
        np.testing.assert_array_equal(y[0, i::r, j::r, ch], x[0, :, :, ch * r * r + i * r + j])


def _torch_bilinear_align_corners_false(x, r):
  """PyTorch's upsample_bilinear2d(align_corners=False), written out: (H, W) -> (H·r, W·r)."""
  h, w = x.shape
  out = np.zeros((h * r, w * r), np.float64)
  def src(d, n):
    s = max((d + 0.5) / r - 0.5, 0.0)
    i0 = min(int(math.floor(s)), n - 1)
    i1 = min(i0 + 1, n - 1)
    return i0, i1, s - i0
  for oy in range(h * r):
    y0, y1, fy = src(oy, h)
    for ox in range(w * r):
      x0, x1, fx = src(ox, w)
      out[oy, ox] = ((1 - fy) * ((1 - fx) * x[y0, x0] + fx * x[y0, x1])
                     + fy * ((1 - fx) * x[y1, x0] + fx * x[y1, x1]))
  return out


def test_bilinear_matches_pytorch_align_corners_false():
  x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
  for r in (2, 4):
    y = np.asarray(upsample.bilinear_upsample(jnp.asarray(x)[None, :, :, None], r))[0, :, :, 0]
    np.testing.assert_allclose(y, _torch_bilinear_align_corners_false(x, r), atol=1e-5)


def test_prelu_single_slope():
  m = upsample.PReLU()
  x = jnp.asarray([-2.0, -1.0, 0.0, 3.0])
  params = m.init(jax.random.key(0), x)
  assert params["params"]["alpha"].shape == (1,)
  np.testing.assert_allclose(np.asarray(m.apply(params, x)), [-0.5, -0.25, 0.0, 3.0])
