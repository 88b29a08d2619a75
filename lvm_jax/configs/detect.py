r"""Strong-lens detection in wide fields: the CenterNet-style detector on an LVM or ResNet50 backbone.

Variants (`arg` = "VARIANT[,runlocal]"):

  tiny      the 64 px `tiny` LVM (pretraining checkpoint `init_from`, preprocessing from its
            metadata: 96 survey px -> 64 network px, asinh), 288 px simulated fields, 64 px tiles
            with 16 px overlap. Used by `experiments/detection_experiment.py`:

    python experiments/detection_experiment.py --config detect:tiny \
        --workdir /tmp/detect_run --config.init_from=/tmp/tiny_run/checkpoints

            The README's run adds `--config.resnet_width=16 --config.num_steps=600` (41 min on
            2 CPU cores: 1,000 training fields, 3 seeds x 3 backbones).

  lvm_100m  the published 100M LVM at 128 px (paper preprocessing has no fixed scale: fields are
            tiled at the survey's 0.262 arcsec/px), the issue's 1,000 training fields and 3 seeds.

`runlocal` shrinks fields, steps and batch for a smoke test. Any field can be overridden with
`--config.a.b=value`.
"""

import ml_collections

from lvm_jax import models


def get_config(arg=None) -> ml_collections.ConfigDict:
  variant, *switches = (arg or "tiny").split(",")
  c = ml_collections.ConfigDict()
  c.backbones = ["lvm_frozen", "lvm_finetune", "resnet50"]
  c.seeds = [0, 1, 2]
  c.init_from = ""            # LVM pretraining checkpoint directory (its `checkpoints/`)
  c.resnet_width = 64         # 64: the standard ResNet50
  c.head_channels = 64
  c.num_steps = 200
  c.batch_size = 16
  c.positive_fraction = 0.25    # of each batch drawn from tiles holding a lens
  c.log_every = 25
  c.overlap = 16              # tile overlap, network pixels
  c.top_k = 8                 # static detections per tile
  c.score_threshold = -1.0    # the operating point for purity / completeness / FP rates;
                              # < 0: chosen per run on the val fields (highest F1)
  c.loss = ml_collections.ConfigDict(dict(heatmap=1.0, size=1.0, offset=1.0, mask=1.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adamw", lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, warmup_steps=20,
      schedule="cosine", end_lr_factor=0.05, grad_clip=1.0))
  c.fields = ml_collections.ConfigDict(dict(
      seed=100, train=1000, val=200, test=200, impostor=200, size=288, lenses=[0, 2], mean_targets=8.0,
      impostor_fraction=0.15, impostor_field_fraction=0.5, workers=2,
      # the visible lenses of `lvm_jax.sim.presets`: Einstein radii (arcsec), arc r magnitudes
      theta_e_range=[1.2, 3.0], lensed_mag_range=[18.0, 20.5]))
  c.model = models.preset("tiny")
  if variant == "lvm_100m":
    c.model = models.preset("lvm_100m")
    c.overlap = 32
    c.batch_size = 32
    c.num_steps = 3000
    c.fields.size = 512
  elif variant != "tiny":
    raise ValueError(f"unknown variant {variant!r}; known: tiny, lvm_100m")
  if "runlocal" in switches:
    c.seeds = [0]
    c.num_steps = 4
    c.batch_size = 4
    c.log_every = 2
    c.fields.train, c.fields.val, c.fields.test, c.fields.impostor = 2, 2, 2, 2
    c.fields.workers = 1
  return c
