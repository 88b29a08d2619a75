"""Analytic FLOP count of a SUNet forward pass (matmuls and convolutions; 1 MAC = 2 FLOP).

XLA's cost analysis miscounts this network, so throughput benchmarks use this count. For the
100M models at 128 px it gives 16.1 GFLOP per image, the figure measured on the PyTorch original
(16.07); a training step (forward + backward) costs about 3x the forward (48.1 GFLOP measured).
Element-wise work (softmax, LayerNorm, GELU, bilinear interpolation) is not counted.
"""

from __future__ import annotations

from typing import Mapping

from lvm_jax.models import windows

TRAIN_STEP_FACTOR = 3.0  # forward + backward (2x forward) per image

# Dense bf16 peak FLOP/s per device by `device_kind` (vendor datasheets, SXM parts); float32
# runs are quoted against the same peak.
PEAK_BF16_FLOPS = {
    "H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "TPU v4": 275e12, "TPU v5 lite": 197e12,
    "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12,
}


def peak_flops(device_kind: str) -> float | None:
  """The dense bf16 peak of a device kind, or None where unknown (CPUs)."""
  for name, value in PEAK_BF16_FLOPS.items():
    if name in device_kind:
      return value
  return None


def _swin_block_macs(tokens: int, dim: int, window: int, mlp_ratio: float) -> float:
  # qkv (3d²) + proj (d²) + MLP (2·ratio·d²) per token; q·k and attn·v: 2·window²·d per token.
  return tokens * ((4 + 2 * mlp_ratio) * dim * dim + 2 * window * window * dim)


def _upsample_macs(tokens: int, c: int, factor: int, out: int) -> float:
  big = tokens * factor * factor
  p = tokens * c * out * factor * factor + big * out * out
  b = tokens * c * c + big * c * out
  return p + b + big * 2 * out * out


def forward_flops(config: Mapping) -> float:
  """FLOPs of one image's forward pass (encoder, decoder, head) for a model config mapping."""
  cfg = dict(config.to_dict() if hasattr(config, "to_dict") else config)
  size, patch, c0 = cfg["img_size"], cfg["patch_size"], cfg["embed_dim"]
  depths, ratio = list(cfg["depths"]), cfg["mlp_ratio"]
  n = len(depths)
  macs = size * size * 9 * cfg["in_chans"] * c0  # conv_first
  res = size // patch
  macs += res * res * patch * patch * c0 * c0  # patch_embed
  for i, depth in enumerate(depths):  # encoder stages
    r, d = res // 2 ** i, c0 * 2 ** i
    w, _ = windows.effective_window(r, cfg["window_size"], 0)
    macs += depth * _swin_block_macs(r * r, d, w, ratio)
    if i < n - 1:
      macs += (r // 2) ** 2 * 4 * d * 2 * d  # patch merging
  r, d = res // 2 ** (n - 1), c0 * 2 ** (n - 1)
  macs += _upsample_macs(r * r, d, 2, d // 2)  # layers_up.0
  for k in range(1, n):  # decoder stages
    r, d = res // 2 ** (n - 1 - k), c0 * 2 ** (n - 1 - k)
    w, _ = windows.effective_window(r, cfg["window_size"], 0)
    macs += r * r * 2 * d * d  # concat_back_dim
    macs += depths[n - 1 - k] * _swin_block_macs(r * r, d, w, ratio)
    if k < n - 1:
      macs += _upsample_macs(r * r, d, 2, d // 2)
  macs += _upsample_macs(res * res, c0, patch, c0)  # final x4
  kernel = 9 if cfg["head"] == "sunet" else 1
  macs += size * size * c0 * cfg["out_chans"] * kernel
  return 2.0 * macs


def train_step_flops(config: Mapping) -> float:
  """FLOPs of one image's training step (forward + backward), 3x the forward."""
  return TRAIN_STEP_FACTOR * forward_flops(config)
