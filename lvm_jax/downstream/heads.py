"""Task heads: each maps a backbone's output ({"features", "embedding"}) (+ the input image) to a prediction.

* `ClassifierHead`: two fully connected layers on the pooled embedding -> (B, K) logits.
* `GaussianHead`: two fully connected layers -> (B, P) means and (B, P) log sigmas.

Both first standardise the embedding with a BatchNorm without scale or offset (collection
`batch_stats`; running statistics at evaluation), as MAE does before its linear probe. A frozen
pretrained embedding can vary little between galaxies compared with its mean; a per-sample
LayerNorm keeps that mean and hides the variation from the head, a per-feature standardisation
over the batch brings each feature's variation to unit scale.
* `ImageDecoder`: a convolutional decoder over the multiscale features (strides 32 -> 4, a
  2x upsampling + skip concatenation + two 3x3 convs per level), then two more 2x upsamplings to
  the input resolution where the head's input (the image, and for inpainting with
  `mask_channel` the mask as a 4th channel) is concatenated and `full_res_convs` 3x3 convs run;
  the output is the input image plus a predicted correction, (B, H, W, 3).
* `LvmDecoderHead`: the pretrained LVM's own decoder (the SUNet's up path and output conv) on
  the encoder's skips and bottleneck (`encoder_features` of an LVM backbone), as the paper
  fine-tunes the whole LVM for its image tasks; loaded from the pretrained checkpoint by
  `lvm_jax.downstream.network.load_lvm_pretrained`, so before any training it reproduces the
  pretrained model's reconstruction (or, `residual`, its input).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def standardise(embedding: jnp.ndarray, train: bool) -> jnp.ndarray:
  """(B, D) -> (B, D) float32, each feature standardised by batch (train) or running statistics."""
  return nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                      momentum=0.9, name="norm")(embedding.astype(jnp.float32))


class ClassifierHead(nn.Module):
  num_classes: int
  hidden: int = 256

  @nn.compact
  def __call__(self, backbone_out: dict[str, Any], images, train: bool = False) -> jnp.ndarray:
    del images
    x = standardise(backbone_out["embedding"], train)
    x = nn.gelu(nn.Dense(self.hidden, name="fc1")(x))
    return nn.Dense(self.num_classes, name="fc2")(x)


class GaussianHead(nn.Module):
  """(B, P) mean and (B, P) log sigma (standardised label units), sigma = exp(log sigma)."""
  num_outputs: int
  hidden: int = 256

  @nn.compact
  def __call__(self, backbone_out: dict[str, Any], images, train: bool = False
               ) -> dict[str, jnp.ndarray]:
    del images
    x = standardise(backbone_out["embedding"], train)
    x = nn.gelu(nn.Dense(self.hidden, name="fc1")(x))
    out = nn.Dense(2 * self.num_outputs, name="fc2")(x)
    mean, log_sigma = jnp.split(out, 2, axis=-1)
    return {"mean": mean, "log_sigma": jnp.clip(log_sigma, -7.0, 5.0)}


def _upsample2(x: jnp.ndarray) -> jnp.ndarray:
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")


class ImageDecoder(nn.Module):
  """features [f4, f8, f16, f32] + input (B, H, W, in_chans) -> (B, H, W, out_chans): the input's
  first out_chans channels + a correction. in_chans > out_chans: extra input planes (a mask)."""
  width: int = 32
  out_chans: int = 3
  in_chans: int = 3
  full_res_convs: int = 1
  input_skip: bool = False  # a stride-2 conv of the input joins the stride-2 level

  @nn.compact
  def __call__(self, backbone_out: dict[str, Any], images, train: bool = False) -> jnp.ndarray:
    del train
    feats = [f.astype(jnp.float32) for f in backbone_out["features"]]
    conv = lambda c, name: nn.Conv(c, (3, 3), padding=1, name=name)  # noqa: E731
    x = nn.gelu(conv(self.width * 4, "lateral_32")(feats[-1]))
    for level, skip in zip(("16", "8", "4"), feats[-2::-1]):
      x = _upsample2(x)
      if x.shape[1:3] != skip.shape[1:3]:
        x = jax.image.resize(x, (x.shape[0], *skip.shape[1:3], x.shape[-1]), "nearest")
      x = jnp.concatenate([x, skip], axis=-1)
      x = nn.gelu(conv(self.width * 2, f"conv_{level}a")(x))
      x = nn.gelu(conv(self.width * 2, f"conv_{level}b")(x))
    img = images.astype(jnp.float32)
    if img.shape[-1] != self.in_chans:
      raise ValueError(f"ImageDecoder built for {self.in_chans} input channels got "
                       f"{img.shape[-1]} (inpainting's mask_channel adds one)")
    for level in ("2", "1"):
      x = _upsample2(x)
      if self.input_skip and level == "2":
        x = jnp.concatenate([x, nn.gelu(nn.Conv(self.width, (3, 3), strides=2, padding=1,
                                                name="input_2")(img))], axis=-1)
      x = nn.gelu(conv(self.width, f"conv_{level}")(x))
    if x.shape[1:3] != img.shape[1:3]:
      raise ValueError(f"decoder output {x.shape[1:3]} != image {img.shape[1:3]} (stride-4 f4?)")
    x = jnp.concatenate([x, img], axis=-1)
    for i in range(self.full_res_convs):
      x = nn.gelu(conv(self.width, "conv_full" if i == 0 else f"conv_full{i}")(x))
    delta = nn.Conv(self.out_chans, (3, 3), padding=1, kernel_init=nn.initializers.zeros,
                    name="out")(x)
    return img[..., :self.out_chans] + delta


class LvmDecoderHead(nn.Module):
  """The SUNet decoder as a head: LVM backbone output -> (B, H, W, out_chans) float32 image.

  `sunet` is a SUNet of the backbone's config; only its decoder runs (and owns parameters, under
  `sunet`, named as in the pretrained checkpoint). Needs an LVM backbone (`encoder_features`).
  With `residual` the output is the input image plus a zero-initialised 3x3 convolution of
  [decoder output, input], so training starts from the input; without, it is the decoder's
  reconstruction.
  """
  sunet: nn.Module
  residual: bool = False
  in_chans: int = 3

  @nn.compact
  def __call__(self, backbone_out: dict[str, Any], images, train: bool = False) -> jnp.ndarray:
    if "encoder_features" not in backbone_out:
      raise ValueError("LvmDecoderHead needs an LVM backbone (its encoder_features); "
                       "use ImageDecoder with a ResNet")
    rec = self.sunet.decode(backbone_out["encoder_features"], train)
    if not self.residual:
      return rec
    img = images.astype(jnp.float32)
    delta = nn.Conv(rec.shape[-1], (3, 3), padding=1, kernel_init=nn.initializers.zeros,
                    name="out")(jnp.concatenate([rec, img], axis=-1))
    return img[..., :rec.shape[-1]] + delta
