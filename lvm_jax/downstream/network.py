"""The downstream network: a backbone (LVM encoder or ResNet) that gives features, and task heads.

    net = Network(backbone=lvm_encoder(models.preset("tiny")), heads={"cls": ClassifierHead(8)})
    variables = init_network(net, images, seed)            # {"params": {"backbone", "heads_cls"}}
    out = net.apply(variables, images, "cls", train=False)  # the head's output

Every backbone returns {"features": [f4, f8, f16, f32] NHWC at strides 4, 8, 16, 32,
"embedding": (B, D) pooled}: for the LVM these are the SUNet encoder's stride-4, 8 and 16 skips and
its normed bottleneck (stride 32), and the bottleneck's token mean (the LVM also gives
"encoder_features", the SUNet encoder's own skips + bottleneck, for `heads.LvmDecoderHead`);
for a ResNet its c2..c5 and the global average of c5. With `freeze_backbone` the features are `stop_gradient`-ed and a
ResNet's BatchNorm uses its running statistics, so only the heads learn (`Pre_train`); the
optimizer also zeroes backbone updates (`lvm_jax.train.optimizer`, `frozen`).
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from lvm_jax import models
from lvm_jax.models import resnet

BACKBONE_KEY = "backbone"


class LvmEncoder(nn.Module):
  """The SUNet encoder as a backbone: images (B, H, W, 3) -> features at strides 4..32, embedding."""
  sunet: models.SUNet

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool = False) -> dict[str, Any]:
    enc = self.sunet.encode(images, train)
    s4, s8, s16, _, bottleneck = enc["features"]
    return {"features": [s4, s8, s16, bottleneck], "embedding": enc["embedding"],
            "encoder_features": enc["features"]}


def lvm_encoder(model_config) -> LvmEncoder:
  """The LVM encoder of a model config (a preset ConfigDict); its params sit under 'sunet'."""
  return LvmEncoder(sunet=models.build(model_config))


def make_backbone(kind: str, model_config=None, width: int = 64) -> nn.Module:
  """'lvm' (the SUNet encoder of `model_config`), 'resnet18' or 'resnet50' (from scratch)."""
  if kind == "lvm":
    return lvm_encoder(model_config)
  if kind == "resnet18":
    return resnet.resnet18(width=width)
  if kind == "resnet50":
    return resnet.resnet50(width=width)
  raise ValueError(f"unknown backbone {kind!r}; known: lvm, resnet18, resnet50")


BANDS = 3  # g, r, z: the backbone's input channels


class Network(nn.Module):
  """A backbone and named heads; `__call__(images, head, train)` runs the backbone and one head.

  images (B, H, W, C) NHWC: the backbone sees the first `BANDS` channels (g, r, z), the head all C
  (an inpainting head with `mask_channel` gets the mask as channel 4). Each head is called as
  head(backbone_output, images, train); a head's `in_chans` (default 3) is what it is built for.
  """
  backbone: nn.Module
  heads: Mapping[str, nn.Module]
  freeze_backbone: bool = False

  def features(self, images: jnp.ndarray, train: bool = False) -> dict[str, Any]:
    out = self.backbone(images[..., :BANDS], train=train and not self.freeze_backbone)
    if self.freeze_backbone:
      out = jax.tree.map(jax.lax.stop_gradient, out)
    return out

  def __call__(self, images: jnp.ndarray, head: str, train: bool = False):
    return self.heads[head](self.features(images, train), images, train)

  def init_all(self, images: jnp.ndarray) -> dict[str, Any]:
    """Runs every head once (for `init`)."""
    feats = self.features(images, False)
    return {k: h(feats, _with_channels(images, getattr(h, "in_chans", BANDS)), False)
            for k, h in self.heads.items()}


def _with_channels(images: jnp.ndarray, n: int) -> jnp.ndarray:
  """images (B, H, W, C) cut or zero-padded to n channels (init inputs for each head)."""
  if images.shape[-1] >= n:
    return images[..., :n]
  pad = jnp.zeros((*images.shape[:-1], n - images.shape[-1]), images.dtype)
  return jnp.concatenate([images, pad], axis=-1)


def initializer(net: Network, image_size: int):
  """A jitted seed -> variables function, compiled once for all the seeds it is called with."""
  x = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
  init = jax.jit(lambda k: net.init(k, x, method=Network.init_all))
  return lambda seed: init(jax.random.key(seed))


def init_network(net: Network, image_size: int, seed: int) -> dict[str, Any]:
  """Variables ({"params", "batch_stats" (heads' standardisation, ResNet BatchNorm)}), from `seed`."""
  return initializer(net, image_size)(seed)


def _pretrained_subtree(target: dict[str, Any], lvm_params: dict[str, Any], where: str
                        ) -> dict[str, Any]:
  """The leaves of `lvm_params` for the modules `target` (a SUNet param subtree) has, shapes checked."""
  missing = set(target) - set(lvm_params)
  if missing:
    raise KeyError(f"pretrained params lack {where} modules {sorted(missing)}")
  new = {k: lvm_params[k] for k in target}
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(target),
                          jax.tree_util.tree_leaves(new)):
    if a.shape != b.shape:
      raise ValueError(f"pretrained {jax.tree_util.keystr(path)} has shape {b.shape}, "
                       f"the {where} {a.shape}")
  return jax.tree.map(jnp.asarray, new)


def load_lvm_pretrained(variables: dict[str, Any], lvm_params: dict[str, Any]) -> dict[str, Any]:
  """variables with the LVM parts replaced by pretrained `lvm_params` (a full SUNet param tree,
  e.g. `checkpoint.restore(dir)["params"]`).

  The backbone's SUNet encoder takes the encoder's leaves; every head with a `sunet` subtree (an
  `heads.LvmDecoderHead`) takes the decoder's. Only the modules each part has are taken, shapes
  checked.
  """
  params = dict(variables["params"])
  params[BACKBONE_KEY] = {"sunet": _pretrained_subtree(params[BACKBONE_KEY]["sunet"], lvm_params,
                                                       "encoder")}
  for name, head in params.items():
    if name.startswith("heads_") and "sunet" in head:
      params[name] = {**head, "sunet": _pretrained_subtree(head["sunet"], lvm_params,
                                                           f"decoder of {name}")}
  return {**variables, "params": params}


def is_resnet(net: Network) -> bool:
  return isinstance(net.backbone, resnet.ResNet)
