"""A supervised classifier trained from scratch on in-memory images: the from-scratch baselines
of the experiments (separability ceilings, ResNets against the LVM on real galaxies).

    probs = fit_classifier(x_train, y_train, x_test, num_classes=4, seed=0)

ResNet18 (or ResNet50) of base width `width` with a classification head (one hidden layer),
trained with `lvm_jax.downstream.training.Trainer`: AdamW, warmup + cosine, one random dihedral
transform per batch, batches drawn with replacement.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Recipe:
  """backbone: 'resnet18' or 'resnet50'; width: base channels; steps, batch: training length;
  lr: peak AdamW learning rate (weight decay 1e-4, warmup a twentieth of the steps)."""
  backbone: str = "resnet18"
  width: int = 32
  steps: int = 700
  batch: int = 32
  lr: float = 2e-3


def fit_classifier(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   num_classes: int, seed: int, recipe: Recipe = Recipe(),
                   log: Callable[[str], None] | None = None) -> np.ndarray:
  """(N_test, num_classes) softmax probabilities of a network trained on (N, S, S, 3) images
  `x_train` with integer labels `y_train`; `seed` sets the initialisation and batch order."""
  import jax
  import ml_collections

  from lvm_jax.downstream import definitions, network, training
  task = definitions.make_task("classification", num_classes=num_classes, hidden=256)
  net = network.Network(network.make_backbone(recipe.backbone, width=recipe.width),
                        {task.name: task.head()})
  opt = ml_collections.ConfigDict(dict(
      name="adamw", lr=recipe.lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4,
      warmup_steps=max(1, recipe.steps // 20), schedule="cosine", end_lr_factor=0.02,
      grad_clip=1.0))
  trainer = training.Trainer(net, task, opt, steps=recipe.steps, batch_size=recipe.batch,
                             step_seed=seed)
  variables = task.init_variables(net, seed)
  variables, history = trainer.run(variables, {"image": x_train, "label": y_train}, seed=seed,
                                   log_every=max(1, recipe.steps // 5))
  for row in history if log else ():
    log(f"step {row['step']} loss {row['loss'] / max(row['count'], 1):.4f} "
        f"({row['seconds']:.0f} s)")
  logits = training.Predictor(net, batch_size=64)(variables, x_test, task.name)
  return np.asarray(jax.nn.softmax(logits, axis=-1))
