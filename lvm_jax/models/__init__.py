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


def step_rngs(key: jax.Array, step) -> dict[str, jax.Array]:
  """The `rngs` for a training `apply` at `step`: the base key folded with the step.

  Dropout and stochastic depth then differ from step to step but are reproducible from
  (key, step) alone, so a resumed run draws exactly what an uninterrupted one would.
  """
  return {"dropout": jax.random.fold_in(key, step)}


__all__ = ["PRESETS", "SUNet", "abstract_params", "authors_embedding", "build", "count_params",
           "embed", "init_params", "preset", "step_rngs"]
