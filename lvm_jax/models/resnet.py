"""ResNet18 / ResNet50 backbones (He et al. 2016) in Flax Linen, NHWC, with BatchNorm.

Baselines for the downstream tasks and the backbone of the lens detector. A backbone only maps
images to features; heads live in the tasks (`lvm_jax.downstream`).

    model = resnet18(width=16)
    variables = model.init(jax.random.key(0), images, train=False)  # {"params", "batch_stats"}
    out, new_state = model.apply(variables, images, train=True, mutable=["batch_stats"])
    out["features"]   # [c2, c3, c4, c5]: (B, H/4, W/4, w), (B, H/8, W/8, 2w), ... (x4 for 50)
    out["embedding"]  # (B, C5) global average of c5

Stem: 7x7 stride-2 conv, BatchNorm, ReLU, 3x3 stride-2 max-pool. Stage k (0-based) has
`width * 2**k` channels (x4 at the output of bottleneck blocks) and, for k > 0, stride 2 in its
first block (in the 3x3 conv, as torchvision's "ResNet v1.5"). The last BatchNorm scale of every
residual branch starts at zero, so every block starts as the identity (Goyal et al. 2017).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from lvm_jax.models import precision


def _conv_and_norm(dtype, train: bool):
  """The blocks' bias-free conv and BatchNorm (torchvision's momentum 0.1 = Flax's 0.9)."""
  conv = functools.partial(nn.Conv, use_bias=False, dtype=dtype, param_dtype=precision.PARAM_DTYPE)
  norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                           epsilon=1e-5, dtype=dtype, param_dtype=precision.PARAM_DTYPE)
  return conv, norm


def _add_shortcut(x, y, strides: int, conv, norm) -> jnp.ndarray:
  """relu(shortcut(x) + y): identity, or a strided 1x1 conv + BatchNorm where shapes differ."""
  if x.shape != y.shape:
    x = norm(name="downsample_bn")(
        conv(y.shape[-1], (1, 1), strides=strides, name="downsample_conv")(x))
  return nn.relu(x + y)


class BasicBlock(nn.Module):
  """Two 3x3 convs (ResNet18/34): (B, H, W, C) -> (B, H/s, W/s, filters)."""
  filters: int
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    conv, norm = _conv_and_norm(self.dtype, train)
    y = conv(self.filters, (3, 3), strides=self.strides, padding=1, name="conv1")(x)
    y = nn.relu(norm(name="bn1")(y))
    y = conv(self.filters, (3, 3), padding=1, name="conv2")(y)
    y = norm(scale_init=nn.initializers.zeros, name="bn2")(y)
    return _add_shortcut(x, y, self.strides, conv, norm)


class BottleneckBlock(nn.Module):
  """1x1, 3x3, 1x1 convs (ResNet50+): (B, H, W, C) -> (B, H/s, W/s, 4 filters)."""
  filters: int
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    conv, norm = _conv_and_norm(self.dtype, train)
    y = nn.relu(norm(name="bn1")(conv(self.filters, (1, 1), name="conv1")(x)))
    y = conv(self.filters, (3, 3), strides=self.strides, padding=1, name="conv2")(y)
    y = nn.relu(norm(name="bn2")(y))
    y = conv(4 * self.filters, (1, 1), name="conv3")(y)
    y = norm(scale_init=nn.initializers.zeros, name="bn3")(y)
    return _add_shortcut(x, y, self.strides, conv, norm)


class ResNet(nn.Module):
  """A ResNet backbone: images (B, H, W, C) -> {"features": [c2, c3, c4, c5], "embedding"}.

  c2..c5 are NHWC at strides 4, 8, 16, 32 with width * (1, 2, 4, 8) channels (times 4 with
  bottleneck blocks); embedding (B, C5) float32 is the global average of c5. Parameters are
  float32; `dtype` is the compute dtype. Train with `mutable=["batch_stats"]`.
  """
  stage_sizes: Sequence[int]
  bottleneck: bool
  width: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool = False) -> dict[str, Any]:
    if images.ndim != 4:
      raise ValueError(f"expected NHWC images (B, H, W, C), got shape {images.shape}")
    x = images.astype(self.dtype)
    x = nn.Conv(self.width, (7, 7), strides=2, padding=3, use_bias=False, dtype=self.dtype,
                param_dtype=precision.PARAM_DTYPE, name="conv_stem")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                     dtype=self.dtype, param_dtype=precision.PARAM_DTYPE, name="bn_stem")(x)
    x = nn.relu(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    block = BottleneckBlock if self.bottleneck else BasicBlock
    features = []
    for i, n_blocks in enumerate(self.stage_sizes):
      for j in range(n_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = block(self.width * 2**i, strides=strides, dtype=self.dtype,
                  name=f"stage{i + 1}_block{j + 1}")(x, train)
      features.append(x)
    embedding = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return {"features": features, "embedding": embedding}


def resnet18(**overrides) -> ResNet:
  """ResNet18: basic blocks (2, 2, 2, 2); c5 has 8 * width channels."""
  return ResNet(**{"stage_sizes": (2, 2, 2, 2), "bottleneck": False, **overrides})


def resnet50(**overrides) -> ResNet:
  """ResNet50: bottleneck blocks (3, 4, 6, 3); c5 has 32 * width channels."""
  return ResNet(**{"stage_sizes": (3, 4, 6, 3), "bottleneck": True, **overrides})
