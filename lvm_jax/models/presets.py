"""Model presets as ml_collections ConfigDicts, and `build(config) -> flax.linen.Module`.

Fields (all of them are SUNet arguments): img_size, patch_size, in_chans, out_chans, embed_dim,
depths, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate,
drop_path_rate, head ("sunet" | "lvm"), dtype ("float32" | "bfloat16"), remat (gradient
checkpointing per Swin block; parameters unchanged), descriptor_outputs (0, or the size of the
pretraining descriptor head, see `lvm_jax.train.descriptors`).
"""

from __future__ import annotations

from lvm_jax.models import precision
from lvm_jax.models import sunet

_SUNET_100M = dict(
    img_size=128, patch_size=4, in_chans=3, out_chans=3, embed_dim=96, depths=(8, 8, 8, 8),
    num_heads=(8, 8, 8, 8), window_size=8, mlp_ratio=4.0, qkv_bias=True, qk_scale=8.0,
    drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1, head="sunet", dtype="float32",
    remat=False, descriptor_outputs=0)

PRESETS = {
    # The paper's LVM as published: SUNet at its defaults with the 1x1 `low_conv` head.
    "lvm_100m": dict(_SUNET_100M, head="lvm"),
    # SUNet's own 3x3 output head: 99,672,457 parameters.
    "sunet_100m": dict(_SUNET_100M),
    # A few million parameters at 64 px for CPU runs, tests and the demo.
    "tiny": dict(_SUNET_100M, img_size=64, embed_dim=32, depths=(2, 2, 2, 2),
                 num_heads=(2, 2, 4, 4), window_size=4, qk_scale=None, drop_path_rate=0.0,
                 head="lvm"),
}


def preset(name: str):
  """A fresh, mutable ml_collections.ConfigDict of the named preset ('lvm_100m', 'sunet_100m', 'tiny').

  ml_collections is imported here, not at module import, so that `build(PRESETS[name])` works
  with only jax, flax, optax and numpy installed (the GPU benchmark machines).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  try:
    fields = PRESETS[name]
  except KeyError:
    from lvm_jax.errors import ConfigError  # pylint: disable=g-import-not-at-top
    raise ConfigError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}") from None
  return ml_collections.ConfigDict(dict(fields, depths=list(fields["depths"]),
                                        num_heads=list(fields["num_heads"])))


def build(config) -> sunet.SUNet:
  """The SUNet module for a model config (a ConfigDict or a plain mapping of its fields)."""
  fields = dict(config.to_dict() if hasattr(config, "to_dict") else config)
  unknown = set(fields) - set(_SUNET_100M)
  if unknown:
    raise ValueError(f"unknown model config fields: {sorted(unknown)}")
  fields["depths"] = tuple(fields["depths"])
  fields["num_heads"] = tuple(fields["num_heads"])
  if len(fields["depths"]) != len(fields["num_heads"]):
    raise ValueError("depths and num_heads must have the same length")
  fields["dtype"] = precision.compute_dtype(fields.get("dtype", "float32"))
  return sunet.SUNet(**fields)
