"""The LVM network (SUNet Swin-UNet) and its presets.

    config = lvm_jax.models.preset("lvm_100m")
    model = lvm_jax.models.build(config)
    params = lvm_jax.models.init_params(model, jax.random.key(0))
    out = model.apply({"params": params}, images, train=False)   # images (B, H, W, 3)
    out["reconstruction"], out["bottleneck"], out["embedding"]
    enc = model.apply({"params": params}, images, method="encode")  # encoder only
"""

from lvm_jax.models.embedding import authors_embedding, embed
from lvm_jax.models.initialisation import abstract_params, init_params
from lvm_jax.models.presets import PRESETS, build, preset
from lvm_jax.models.sunet import SUNet

import jax



def count_params(params) -> int:
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))


__all__ = ["PRESETS", "SUNet", "abstract_params", "authors_embedding", "build", "count_params",
           "embed", "init_params", "preset"]
