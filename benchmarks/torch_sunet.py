"""A PyTorch SUNet written from the architecture spec (`../shared/reference/README.md`).

The baseline of `benchmarks/vs_torch.py`: the network of the original PyTorch code, with its
module names (so that its `state_dict()` has exactly the published names and buffers) and its
operations in its order (token tensors (B, L, C), window partition by view/permute, the
relative-position bias gathered from its table, the shift mask added per window). Not part of
the package; needs `torch` (the `bench` extra).

    model = torch_sunet.SUNet(**torch_sunet.config_of("tiny"))
    model.load_state_dict(state_dict)                   # the published names
    y = model(x_nchw)                                   # (B, 3, H, W); the `lvm` head: (y, bottleneck)

`from_reference_npz(path)` builds the model of a shared parity file and loads its weights.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import torch
from torch import nn


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
  """(B, H, W, C) -> (B·nW, window, window, C)."""
  b, h, w, c = x.shape
  x = x.view(b, h // window, window, w // window, window, c)
  return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
  """(B·nW, window, window, C) -> (B, H, W, C)."""
  b = int(windows.shape[0] / (h * w / window / window))
  x = windows.view(b, h // window, w // window, window, window, -1)
  return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


class Mlp(nn.Module):
  def __init__(self, dim: int, hidden: int):
    super().__init__()
    self.fc1 = nn.Linear(dim, hidden)
    self.act = nn.GELU()
    self.fc2 = nn.Linear(hidden, dim)

  def forward(self, x):
    return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
  def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool, qk_scale):
    super().__init__()
    self.window, self.num_heads = window, num_heads
    head_dim = dim // num_heads
    self.scale = qk_scale or head_dim ** -0.5
    self.relative_position_bias_table = nn.Parameter(
        torch.zeros((2 * window - 1) ** 2, num_heads))
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    self.register_buffer("relative_position_index", rel.sum(-1))
    self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
    self.proj = nn.Linear(dim, dim)
    nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

  def forward(self, x, mask=None):
    b, n, c = x.shape
    qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = (q * self.scale) @ k.transpose(-2, -1)
    bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
    attn = attn + bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
    if mask is not None:
      nw = mask.shape[0]
      attn = attn.view(b // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
      attn = attn.view(-1, self.num_heads, n, n)
    attn = attn.softmax(dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(b, n, c)
    return self.proj(x)


def _shift_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
  img = torch.zeros((1, resolution, resolution, 1))
  slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
  region = 0
  for hs in slices:
    for ws in slices:
      img[:, hs, ws, :] = region
      region += 1
  labels = window_partition(img, window).view(-1, window * window)
  mask = labels.unsqueeze(1) - labels.unsqueeze(2)
  return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class SwinBlock(nn.Module):
  def __init__(self, dim: int, resolution: int, num_heads: int, window: int, shift: int,
               mlp_ratio: float, qkv_bias: bool, qk_scale):
    super().__init__()
    if resolution <= window:  # the window clamp
      window, shift = resolution, 0
    self.resolution, self.window, self.shift = resolution, window, shift
    self.norm1 = nn.LayerNorm(dim)
    self.attn = WindowAttention(dim, window, num_heads, qkv_bias, qk_scale)
    self.norm2 = nn.LayerNorm(dim)
    self.mlp = Mlp(dim, int(dim * mlp_ratio))
    self.register_buffer("attn_mask", _shift_mask(resolution, window, shift) if shift else None)

  def forward(self, x):
    h = w = self.resolution
    b, _, c = x.shape
    shortcut = x
    x = self.norm1(x).view(b, h, w, c)
    if self.shift:
      x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
    windows = window_partition(x, self.window).view(-1, self.window * self.window, c)
    windows = self.attn(windows, mask=self.attn_mask).view(-1, self.window, self.window, c)
    x = window_reverse(windows, self.window, h, w)
    if self.shift:
      x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
    x = shortcut + x.view(b, h * w, c)
    return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
  def __init__(self, resolution: int, dim: int):
    super().__init__()
    self.resolution = resolution
    self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
    self.norm = nn.LayerNorm(4 * dim)

  def forward(self, x):
    h = w = self.resolution
    b, _, c = x.shape
    x = x.view(b, h, w, c)
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class UpSample(nn.Module):
  """Dual up-sampling of tokens (B, H·W, C): x2 -> (B, 4·H·W, C/2); x4 -> (B, 4H, 4W, C)."""

  def __init__(self, resolution: int, channels: int, factor: int):
    super().__init__()
    self.resolution, self.factor = resolution, factor
    c = channels
    out = c // 2 if factor == 2 else c
    self.conv = nn.Conv2d(2 * out, out, 1, bias=False)
    self.up_p = nn.Sequential(nn.Conv2d(c, out * factor * factor, 1, bias=False), nn.PReLU(),
                              nn.PixelShuffle(factor), nn.Conv2d(out, out, 1, bias=False))
    self.up_b = nn.Sequential(nn.Conv2d(c, c, 1), nn.PReLU(),
                              nn.Upsample(scale_factor=factor, mode="bilinear",
                                          align_corners=False),
                              nn.Conv2d(c, out, 1, bias=False))

  def forward(self, x):
    h = w = self.resolution
    b, _, c = x.shape
    x = x.view(b, h, w, c).permute(0, 3, 1, 2)
    out = self.conv(torch.cat([self.up_p(x), self.up_b(x)], dim=1)).permute(0, 2, 3, 1)
    return out.reshape(b, -1, c // 2) if self.factor == 2 else out


class BasicLayer(nn.Module):
  """`depth` Swin blocks (odd ones shifted), then PatchMerging (`downsample`) or UpSample."""

  def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, window: int,
               mlp_ratio: float, qkv_bias: bool, qk_scale, resample: str | None):
    super().__init__()
    self.blocks = nn.ModuleList([
        SwinBlock(dim, resolution, num_heads, window, 0 if i % 2 == 0 else window // 2,
                  mlp_ratio, qkv_bias, qk_scale) for i in range(depth)])
    if resample == "merge":
      self.downsample = PatchMerging(resolution, dim)
    elif resample == "upsample":
      self.upsample = UpSample(resolution, dim, 2)
    self.resample = resample

  def forward(self, x):
    for block in self.blocks:
      x = block(x)
    if self.resample == "merge":
      return self.downsample(x)
    if self.resample == "upsample":
      return self.upsample(x)
    return x


class SUNet(nn.Module):
  """The SUNet Swin-UNet; `head` "sunet" (3x3 `output` conv) or "lvm" (1x1 `low_conv`)."""

  def __init__(self, img_size: int = 128, patch_size: int = 4, in_chans: int = 3,
               out_chans: int = 3, embed_dim: int = 96, depths: Sequence[int] = (8, 8, 8, 8),
               num_heads: Sequence[int] = (8, 8, 8, 8), window_size: int = 8,
               mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale=8.0,
               head: str = "lvm"):
    super().__init__()
    n = len(depths)
    grid = img_size // patch_size
    self.head, self.num_layers = head, n
    self.prelu = nn.PReLU()  # constructed and never called, as in the original
    self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
    self.patch_embed = nn.Module()
    self.patch_embed.proj = nn.Conv2d(embed_dim, embed_dim, patch_size, patch_size)
    self.patch_embed.norm = nn.LayerNorm(embed_dim)
    self.layers = nn.ModuleList([
        BasicLayer(embed_dim * 2 ** i, grid // 2 ** i, depths[i], num_heads[i], window_size,
                   mlp_ratio, qkv_bias, qk_scale, "merge" if i < n - 1 else None)
        for i in range(n)])
    self.norm = nn.LayerNorm(embed_dim * 2 ** (n - 1))
    layers_up, concat = [UpSample(grid // 2 ** (n - 1), embed_dim * 2 ** (n - 1), 2)], [nn.Identity()]
    for k in range(1, n):
      i = n - 1 - k
      dim = embed_dim * 2 ** i
      concat.append(nn.Linear(2 * dim, dim))
      layers_up.append(BasicLayer(dim, grid // 2 ** i, depths[i], num_heads[i], window_size,
                                  mlp_ratio, qkv_bias, qk_scale,
                                  "upsample" if k < n - 1 else None))
    self.layers_up = nn.ModuleList(layers_up)
    self.concat_back_dim = nn.ModuleList(concat)
    self.norm_up = nn.LayerNorm(embed_dim)
    self.up = UpSample(grid, embed_dim, patch_size)
    if head == "sunet":
      self.output = nn.Conv2d(embed_dim, out_chans, 3, 1, 1, bias=False)
    elif head == "lvm":
      self.output_class = nn.Sequential(nn.Linear(embed_dim * 8 * 4, 256), nn.ReLU(),
                                        nn.Linear(256, 5))  # never called, as published
      self.output_re = nn.Conv2d(embed_dim, out_chans, 3, 1, 1, bias=False)  # never called
      self.low_conv = nn.Conv2d(embed_dim, out_chans, 1)
    else:
      raise ValueError(f"unknown head {head!r}")

  def encode(self, x):
    """Images (B, in_chans, H, W) -> (normed bottleneck tokens (B, N, 8·embed_dim), skips)."""
    x = self.patch_embed.proj(self.conv_first(x)).flatten(2).transpose(1, 2)
    x = self.patch_embed.norm(x)
    skips = []
    for layer in self.layers:
      skips.append(x)
      x = layer(x)
    return self.norm(x), skips

  def forward(self, x):
    bottleneck, skips = self.encode(x)
    x = bottleneck
    for k, layer_up in enumerate(self.layers_up):
      if k:
        x = self.concat_back_dim[k](torch.cat([x, skips[self.num_layers - 1 - k]], -1))
      x = layer_up(x)
    x = self.up(self.norm_up(x)).permute(0, 3, 1, 2)
    if self.head == "sunet":
      return self.output(x)
    return self.low_conv(x), bottleneck


def config_of(fields: dict) -> dict:
  """SUNet keyword arguments from an lvm-jax model config (dropout and dtype fields dropped)."""
  keys = ("img_size", "patch_size", "in_chans", "out_chans", "embed_dim", "depths",
          "num_heads", "window_size", "mlp_ratio", "qkv_bias", "qk_scale", "head")
  return {k: (tuple(fields[k]) if k in ("depths", "num_heads") else fields[k])
          for k in keys if k in fields}


def from_reference_npz(path) -> tuple[SUNet, np.ndarray, np.ndarray]:
  """The model of a shared parity file (its config, its weights), its input and output (NCHW)."""
  data = np.load(path)
  meta = json.loads(str(data["meta"]))
  fields = dict(meta["config"], head=meta["variant"])
  model = SUNet(**config_of(fields))
  prefix = "state_dict/"
  state = {k[len(prefix):]: torch.from_numpy(np.array(data[k])) for k in data.files
           if k.startswith(prefix)}
  model.load_state_dict(state, strict=True)
  return model.eval(), data["input_nchw"], data["output_nchw"]
