"""The SUNet Swin-UNet, the network of the LVM (Fu et al. 2024), in Flax Linen.

Exactly the PyTorch original (spec: `../shared/reference/README.md`). Images are NHWC
(B, H, W, in_chans); for the published model, raw g, r, z fluxes in nanomaggies at 128x128 px.

Parameter tree names mirror the PyTorch state dict (`layers.0.blocks.1.attn.qkv.weight` is
`params["layers_0"]["blocks_1"]["attn"]["qkv"]["kernel"]`), see `lvm_jax.convert`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lvm_jax.models import precision
from lvm_jax.models import swin
from lvm_jax.models import upsample

HEADS = ("sunet", "lvm")


class ConvParams(nn.Module):
  """The kernel (kh, kw, in, out) and bias (out,) of a convolution, as nn.Conv names them."""
  kernel_size: int
  in_features: int
  features: int

  def setup(self):
    pdt = precision.PARAM_DTYPE
    k = self.kernel_size
    self.kernel = self.param("kernel", nn.initializers.lecun_normal(),
                             (k, k, self.in_features, self.features), pdt)
    self.bias = self.param("bias", nn.initializers.zeros, (self.features,), pdt)

  def __call__(self) -> tuple[jnp.ndarray, jnp.ndarray]:
    return self.kernel, self.bias


class PatchEmbed(nn.Module):
  """`conv_first` (3x3, padding 1) then the patch x patch conv of stride patch (`patch_embed.proj`)
  and LayerNorm: (B, H, W, in_chans) -> (B, H/p, W/p, D).

  Both convolutions are linear, so they run as one (p+2) x (p+2) convolution of stride p whose
  kernel and bias are composed from theirs: the same function (up to float rounding) at a
  fraction of the cost, without the full-resolution (B, H, W, D) activation.
  """
  embed_dim: int
  patch_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, conv_first: ConvParams, x: jnp.ndarray) -> jnp.ndarray:
    p, d = self.patch_size, self.embed_dim
    hi = jax.lax.Precision.HIGHEST  # weight products: exact in float32 on every backend
    k1, b1 = conv_first()                                                     # (3, 3, I, D)
    k2, b2 = ConvParams(p, d, d, name="proj")()                               # (p, p, D, D)
    kernel = jnp.zeros((p + 2, p + 2, k1.shape[2], d), k1.dtype)
    for sy in range(3):
      for sx in range(3):
        part = jnp.einsum("im,yxmo->yxio", k1[sy, sx], k2, precision=hi)
        kernel = kernel.at[sy:sy + p, sx:sx + p].add(part)
    bias = b2 + jnp.einsum("m,yxmo->o", b1, k2, precision=hi)
    x = jax.lax.conv_general_dilated(
        x.astype(self.dtype), kernel.astype(self.dtype), (p, p), ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = x + bias.astype(self.dtype)
    return swin.layer_norm(self.dtype, "norm")(x)


class DescriptorHead(nn.Module):
  """MLP on the embedding (B, D) -> (B, outputs): Dense(2D), LayerNorm, GELU, Dense.

  Trained only by pretraining's descriptor term (`lvm_jax.train.descriptors`); the encoder,
  decoder, export and converted weights never use it.
  """
  outputs: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, embedding: jnp.ndarray) -> jnp.ndarray:
    pdt = precision.PARAM_DTYPE
    x = nn.Dense(2 * embedding.shape[-1], dtype=self.dtype, param_dtype=pdt, name="hidden")(
        embedding.astype(self.dtype))
    x = nn.gelu(swin.layer_norm(self.dtype, "norm")(x))
    return nn.Dense(self.outputs, dtype=self.dtype, param_dtype=pdt, name="out")(x).astype(
        jnp.float32)


class SUNet(nn.Module):
  """Swin-UNet encoder-decoder with the `sunet` (3x3 conv) or `lvm` (1x1 `low_conv`) head.

  `__call__(images (B, H, W, in_chans), train) -> dict`:
    reconstruction (B, H, W, out_chans) float32, bottleneck (B, N, 8·embed_dim) normed tokens
    (N = (H / patch / 8)²; (B, 16, 768) for the 100M models at 128 px), embedding (B, 8·embed_dim)
    (bottleneck mean over tokens), features (the four encoder skips + bottleneck, NHWC grids).
  `encode(images, train)` runs the encoder only and returns the same dict without
  `reconstruction`. `skip_keep` (B,) in [0, 1], optional, scales every skip connection of each
  image (0: the decoder sees the bottleneck only), for pretraining that makes the bottleneck
  carry the image (see `lvm_jax.train.objectives.ReconstructionTask.skip_drop`).
  `scan` runs stages of 4 or more blocks as a loop over block pairs (`swin.SwinStage`): the
  same function and parameters, a fraction of the compile time.
  `descriptor_outputs` > 0 adds a `DescriptorHead` on the embedding, and `__call__` returns its
  prediction as `descriptors` (B, descriptor_outputs), for pretraining's descriptor term
  (`lvm_jax.train.descriptors`); 0 (the published models) leaves the parameters as the original.
  """
  img_size: int = 128
  patch_size: int = 4
  in_chans: int = 3
  out_chans: int = 3
  embed_dim: int = 96
  depths: Sequence[int] = (8, 8, 8, 8)
  num_heads: Sequence[int] = (8, 8, 8, 8)
  window_size: int = 8
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  qk_scale: float | None = 8.0
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.1
  head: str = "lvm"
  remat: bool = False
  descriptor_outputs: int = 0
  dtype: Any = jnp.float32
  scan: bool = True

  def _drop_path_rates(self) -> list[list[float]]:
    """Stochastic-depth rate of each encoder block, linear in depth (Swin's schedule)."""
    rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths)).tolist()
    starts = np.cumsum([0, *self.depths])
    return [rates[starts[i]:starts[i + 1]] for i in range(len(self.depths))]

  def _stage(self, i: int, resample: str, name: str) -> swin.SwinStage:
    return swin.SwinStage(self.depths[i], self.num_heads[i], self.window_size, self.mlp_ratio,
                          self.qkv_bias, self.qk_scale, self.drop_rate, self.attn_drop_rate,
                          self._drop_path_rates()[i], resample, self.remat, self.dtype,
                          self.scan, name=name)

  def setup(self):
    if self.head not in HEADS:
      raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
    if self.img_size % (self.patch_size * 2 ** (len(self.depths) - 1)):
      raise ValueError(f"img_size {self.img_size} is not divisible by patch_size·2^(stages−1)")
    dt, pdt = self.dtype, precision.PARAM_DTYPE
    n = len(self.depths)
    # The original constructs a top-level nn.PReLU that its forward never calls; keeping its
    # single weight makes the parameter count (99,672,457) and the state dict match.
    self.prelu = self.param("prelu", nn.initializers.constant(0.25), (1,), pdt)
    self.conv_first = ConvParams(3, self.in_chans, self.embed_dim)
    self.patch_embed = PatchEmbed(self.embed_dim, self.patch_size, dt)
    self.pos_drop = nn.Dropout(self.drop_rate)
    self.layers = [self._stage(i, "merge" if i < n - 1 else "none", f"layers_{i}")
                   for i in range(n)]
    self.norm = swin.layer_norm(dt)
    bottom = self.embed_dim * 2 ** (n - 1)
    self.layers_up_0 = upsample.DualUpSample(2, bottom // 2, dt)
    self.concat_back_dim = [nn.Dense(self.embed_dim * 2 ** (n - 1 - k), dtype=dt, param_dtype=pdt,
                                     name=f"concat_back_dim_{k}") for k in range(1, n)]
    self.layers_up = [self._stage(n - 1 - k, "upsample" if k < n - 1 else "none",
                                  f"layers_up_{k}") for k in range(1, n)]
    self.norm_up = swin.layer_norm(dt)
    self.up = upsample.DualUpSample(self.patch_size, self.embed_dim, dt)
    if self.head == "sunet":
      self.output = nn.Conv(self.out_chans, (3, 3), padding=1, use_bias=False, dtype=dt,
                            param_dtype=pdt)
    else:
      self.low_conv = nn.Conv(self.out_chans, (1, 1), dtype=dt, param_dtype=pdt)
    if self.descriptor_outputs:
      self.descriptor_head = DescriptorHead(self.descriptor_outputs, dt)

  def encode(self, images: jnp.ndarray, train: bool = False) -> dict[str, Any]:
    """Encoder only. images (B, H, W, in_chans) -> bottleneck, embedding, features."""
    x = self.patch_embed(self.conv_first, images)
    x = self.pos_drop(x, deterministic=not train)
    skips = []
    for layer in self.layers:
      skips.append(x)
      x = layer(x, train)
    x = self.norm(x)
    b, h, w, c = x.shape
    bottleneck = x.reshape(b, h * w, c).astype(jnp.float32)
    return {"bottleneck": bottleneck, "embedding": bottleneck.mean(axis=1),
            "features": [*skips, x]}

  def describe(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """Encoder and descriptor head only: images (B, H, W, in_chans) -> (B, descriptor_outputs)."""
    return self.descriptor_head(self.encode(images, train)["embedding"])

  def decode(self, features: Sequence[jnp.ndarray], train: bool = False,
             skip_keep: jnp.ndarray | None = None) -> jnp.ndarray:
    """Decoder and head: `encode(...)["features"]` -> reconstruction (B, H, W, out_chans).

    skip_keep: optional (B,) factor applied to every skip connection of each image.
    """
    *skips, x = features
    if skip_keep is not None:
      keep = skip_keep.astype(x.dtype)[:, None, None, None]
      skips = [s * keep for s in skips]
    n = len(self.depths)
    x = self.layers_up_0(x)
    for k in range(1, n):
      x = jnp.concatenate([x, skips[n - 1 - k]], axis=-1)
      x = self.concat_back_dim[k - 1](x)
      x = self.layers_up[k - 1](x, train)
    x = self.up(self.norm_up(x))
    out = self.output(x) if self.head == "sunet" else self.low_conv(x)
    return out.astype(jnp.float32)

  def __call__(self, images: jnp.ndarray, train: bool = False,
               skip_keep: jnp.ndarray | None = None) -> dict[str, Any]:
    out = self.encode(images, train)
    out["reconstruction"] = self.decode(out["features"], train, skip_keep)
    if self.descriptor_outputs:
      out["descriptors"] = self.descriptor_head(out["embedding"])
    return out
