"""Diagnostic: how well can the encoder's pooled embedding separate the classes *with labels*?

    python experiments/representation_ceiling.py --config pretrain:tiny \
        --set data.files='/tmp/tiny_survey/*.h5' [--set data.preprocessing.crop_size=64]

The representation check of pretraining asks a self-supervised embedding to beat PCA of the
pixels and a randomly initialised encoder in k-NN accuracy on the simulated classes. This script
measures the ceiling that check runs against at the same model size, data and step budget: the
encoder (the config's model, fresh initialisation) is trained *supervised*, a linear softmax head
on the batch-standardised embedding, cross-entropy on the training split's class labels, random
dihedral flips / rotations, AdamW with warmup + cosine. Every `--eval_every` steps it prints the
held-out embedding's k-NN accuracy (k = 10, centred cosine, leave-one-out; the pretraining
`knn` evaluator's metric) and its 5-fold ridge linear-probe accuracy, next to the baselines on
the same held-out images: PCA of the pixels (256 components), the random encoder, and the
galaxy's radial g, r, z profile (mean of each band in 2 px annuli about the stamp centre, the
last bin everything beyond `--annuli` x 2 px). Self-supervised pretraining of the same budget
cannot be expected to beat the supervised figure.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def radial_profile(images: np.ndarray, annuli: int, width_px: float = 2.0) -> np.ndarray:
  """(B, S, S, C) centred stamps -> (B, annuli * C): mean of each band in annuli of `width_px`."""
  from lvm_jax.train.descriptors import annulus_weights
  weights = annulus_weights(images.shape[1], annuli, width_px)
  return np.einsum("bhwc,hwn->bnc", images, weights).reshape(len(images), -1)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="pretrain:tiny")
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--lr", type=float, default=1e-3)
  parser.add_argument("--eval_every", type=int, default=200)
  parser.add_argument("--annuli", type=int, default=10)
  parser.add_argument("--k", type=int, default=10)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)

  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import optax

  from lvm_jax import models
  from lvm_jax.data import augment
  from lvm_jax import config as config_lib
  from lvm_jax.train import data as data_lib, evaluators as ev

  config = config_lib.apply_overrides(config_lib.load_config(args.config), args.set)
  if not config.data.class_column:
    parser.error("the config has no data.class_column: there are no classes to separate")
  size = int(config.model.img_size)
  train_src, val_src = data_lib.make_sources(config.data)
  train = data_lib.load_eval_set(config.data, train_src, size)
  val = data_lib.load_eval_set(config.data, val_src, size)
  x_train, y_train = train["image"], train["label"]
  keep = y_train >= 0
  x_train, y_train = x_train[keep], y_train[keep]
  x_val, y_val = val["image"], val["label"]
  n_classes = int(max(y_train.max(), y_val.max())) + 1
  print(f"{len(x_train)} training / {len(x_val)} held-out images {tuple(x_val.shape[1:])}, "
        f"{n_classes} classes, device {jax.devices()[0].device_kind}", flush=True)

  model = models.build(config.model)
  width = int(config.model.embed_dim) * 2 ** (len(config.model.depths) - 1)

  class Head(nn.Module):
    """Linear softmax head on the batch-standardised embedding (B, width) -> (B, classes)."""

    @nn.compact
    def __call__(self, e):
      e = (e - e.mean(0)) / jnp.sqrt(e.var(0) + 1e-5)
      return nn.Dense(n_classes)(e)

  head = Head()
  params = {"encoder": models.init_params(model, args.seed),
            "head": head.init(jax.random.PRNGKey(args.seed + 1), jnp.zeros((2, width)))["params"]}

  @jax.jit
  def embed(encoder_params, images):
    return model.apply({"params": encoder_params}, images, method=model.encode)["embedding"]

  def held_out_embedding(encoder_params):
    return np.concatenate([np.asarray(embed(encoder_params, jnp.asarray(x_val[i:i + 100])))
                           for i in range(0, len(x_val), 100)])

  def scores(features):
    return (ev.knn_accuracy(features, y_val, args.k), ev.linear_probe_accuracy(features, y_val))

  rows = {"PCA of pixels (256)": scores(ev.pca_features(x_val, 256)),
          f"radial g,r,z profile ({args.annuli} annuli)": scores(radial_profile(x_val, args.annuli)),
          "random-init encoder": scores(held_out_embedding(params["encoder"])),
          "majority class": (float(np.mean(y_val == np.bincount(y_train).argmax())),) * 2}
  for name, (knn, probe) in rows.items():
    print(json.dumps({"features": name, "knn": knn, "probe": probe}), flush=True)

  schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(50, args.steps // 4),
                                                args.steps, args.lr * 0.01)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(
      schedule, weight_decay=0.05, mask=lambda p: jax.tree.map(lambda v: v.ndim > 1, p)))
  opt_state = tx.init(params)

  def loss_fn(params, images, labels):
    e = model.apply({"params": params["encoder"]}, images, method=model.encode)["embedding"]
    logits = head.apply({"params": params["head"]}, e)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  @jax.jit
  def step(params, opt_state, images, labels):
    loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(args.seed)
  t0 = time.time()
  for s in range(1, args.steps + 1):
    idx = rng.choice(len(x_train), args.batch, replace=False)
    images = np.stack([augment.dihedral(x_train[i], int(k))
                       for i, k in zip(idx, rng.integers(0, 8, args.batch))])
    params, opt_state, loss = step(params, opt_state, jnp.asarray(images),
                                   jnp.asarray(y_train[idx]))
    if s % args.eval_every == 0 or s == args.steps:
      knn, probe = scores(held_out_embedding(params["encoder"]))
      print(json.dumps({"features": "supervised encoder", "step": s, "train_loss": float(loss),
                        "knn": knn, "probe": probe,
                        "elapsed_s": round(time.time() - t0, 1)}), flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
