"""Mutable collections (e.g. BatchNorm statistics) are initialised, updated and checkpointed."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from lvm_jax import checkpoint
from lvm_jax.train import objectives, trainer


@dataclasses.dataclass(frozen=True)
class CountingTask(objectives.ReconstructionTask):
  """Reconstruction plus a `stats` collection counting the images trained on."""
  mutable: tuple[str, ...] = ("stats",)

  def init_variables(self, model, seed, shardings=None):
    variables = super().init_variables(model, seed, shardings)
    return {**variables, "stats": {"images_seen": jnp.zeros((), jnp.float32)}}

  def loss_fn(self, model, variables, batch, rng, train=True):
    plain = objectives.ReconstructionTask(mask_fraction=self.mask_fraction,
                                     mask_patch=self.mask_patch)
    loss, (metrics, _) = plain.loss_fn(model, {"params": variables["params"]}, batch, rng, train)
    seen = variables["stats"]["images_seen"] + jnp.sum(batch["valid"].astype(jnp.float32))
    return loss, (metrics, {"stats": {"images_seen": seen}})


@pytest.mark.slow
def test_model_state_survives_a_restart(make_config, tmp_path):
  task = CountingTask(mask_fraction=0.5)
  # A constant learning rate keeps num_steps out of the step, so the resumed run reuses the
  # first run's compile (persistent cache).
  same = ("eval.evaluators=[]", "checkpoint.async_save=False", "optimizer.schedule=constant")
  trainer.train_and_evaluate(make_config(*same, "num_steps=3"), tmp_path, task=task)
  # A second call in the same workdir resumes from step 3 and trains to step 6.
  config = make_config(*same, "num_steps=6")
  summary = trainer.train_and_evaluate(config, tmp_path, task=task)
  assert summary["start_step"] == 3 and summary["step"] == 6
  batch = int(config.batch_size)
  for step in (3, 6):
    restored = checkpoint.restore(tmp_path / "checkpoints", step, items=("model_state",))
    seen = np.asarray(restored["model_state"]["stats"]["images_seen"])
    assert seen == step * batch, (step, seen)
