r"""Self-supervised pretraining of the LVM (SUNet Swin-UNet): reconstruct g, r, z cutouts.

Variants (`arg` = "VARIANT[,runlocal]"):

  lvm_100m  the paper's settings (Fu et al. 2024): the 100M SUNet with the 1x1 `low_conv` head at
            128 px, the paper's preprocessing (adaptive crop + anti-aliased resize, raw
            nanomaggies), MSE reconstruction, Adam, global batch 512. The learning-rate schedule
            (warmup + cosine from 1e-4) and step count are this project's choice. Point
            `data.files` at the ssl-legacysurvey HDF5 files:

    lvm-jax train --config pretrain:lvm_100m --workdir /ckpt/lvm_100m \
        --config.data.files='/data/ssl-legacysurvey/images_npix152_*.h5'

  tiny      minutes on 2 CPU cores: the 64 px `tiny` preset on a simulated survey
            (`lvm-jax simulate`, or `lvm_jax.sim.write_survey`), asinh-normalised centre crops,
            plain reconstruction as in the paper, and the descriptor term
            (`task.descriptor_weight` 0.3: a head on the embedding predicts the image's colours,
            light-profile shape and m = 1, 2 azimuthal amplitudes, `lvm_jax.train.descriptors`),
            without which the embedding stays no better than a random encoder's (a U-Net
            reconstructs through its skips). Measured (600 steps of 32, 2 CPU cores, seeds 0-3):
            held-out MSE 0.179-0.191 vs 0.423 for identity-through-blur; embedding k-NN accuracy
            0.376-0.428 vs 0.320 for PCA of the pixels and 0.184-0.244 for a random encoder
            (README, Pretraining):

    lvm-jax train --config pretrain:tiny --workdir /tmp/tiny_run \
        --config.data.files='/tmp/tiny_survey/*.h5'

  gz1       real galaxies: the `tiny` model on the Galaxy Zoo 1 SDSS colour composites ingested
            with `lvm-jax ingest` (display RGB, whole 152 px stamp resized to 64 px, / 255),
            reading only the ingest's `pretrain` split (`data.split`), so the galaxies of its
            train / val / test splits are never seen; the paper's augmentations (dihedral flips
            and rotations, shifts); 2,000 steps of 32 (30-40 minutes at tiny's 28-35 img/s on 2
            CPU cores); k-NN evaluation on the held-out part of the pretrain split
            (`catalogue/class_id`).
            Recipes as switches: `gz1` is the project's (reconstruction + descriptor term),
            `gz1,paper_recipe` the paper's pure reconstruction:

    lvm-jax ingest ../shared/data/galaxy_zoo1_sdss \
        --catalogue ../shared/data/galaxy_zoo1_sdss/labels.csv --out runs/gz1 --kind display_rgb \
        --stamp 152 --pretrain 0.5 --splits train=0.3,val=0.1,test=0.1 --seed 0 \
        --id-column objid --label-column class_name
    lvm-jax train --config pretrain:gz1 --workdir runs/gz1_pretrain \
        --config.data.files='runs/gz1/*.h5'

`paper_recipe` (any variant) turns the descriptor term off: MSE reconstruction alone.
`runlocal` shrinks steps, batch and evaluation for a smoke test. Any field can be overridden with
`--config.a.b=value`.
"""

import ml_collections

from lvm_jax import models
from lvm_jax.train import descriptors

ASINH_SOFTENING_GRZ = (0.002, 0.003, 0.008)


def _base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_steps = 100_000
  c.batch_size = 512          # global
  c.grad_accum = 1            # microbatches per step (scan); batch_size / grad_accum per pass
  c.remat = "none"            # none | full | dots | dots_no_batch: jax.checkpoint of the whole
                              # loss; per-Swin-block remat is model.remat=True (saves memory)
  c.ema_decay = 0.0           # > 0 keeps (and checkpoints) an EMA of the params

  c.model = models.preset("lvm_100m")  # model.dtype "bfloat16" for mixed precision

  c.task = ml_collections.ConfigDict(dict(
      name="reconstruction", mask_fraction=0.0, mask_patch=8, mask_fill=0.0, noise_sigma=0.0,
      loss_on_masked_only=False, skip_drop=0.0,
      # > 0: also predict the clean image's photometric descriptors from the embedding
      # (lvm_jax.train.descriptors); needs model.descriptor_outputs = (bands - 1) + (annuli - 1)
      # + len(descriptor_orders) x (len(descriptor_ring_edges_px) - 1)
      descriptor_weight=0.0, descriptor_annuli=10, descriptor_width_px=2.0,
      # which input the descriptor head sees: "degraded" (the reconstruction pass) or
      # "clean" (an extra encoder-only pass on the clean images)
      descriptor_input="degraded",
      # azimuthal Fourier orders m (e.g. [1, 2]) whose amplitudes in rings between these radii
      # (px) join the descriptors; each order adds len(edges) - 1 outputs
      descriptor_orders=[], descriptor_ring_edges_px=list(descriptors.RING_EDGES_PX)))

  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", lr=1e-4, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, warmup_steps=2_000,
      schedule="cosine", end_lr_factor=0.01, grad_clip=1.0))

  c.data = ml_collections.ConfigDict(dict(
      files="data/ssl-legacysurvey/*.h5", val_size=4096, split_seed=2024,
      # "": every record of data.files; a split name ("pretrain"): only that split of an
      # ingested survey (`lvm-jax ingest --pretrain`), held-out records included
      split="",
      class_column="", augment=True, max_shift=4, worker_count=8, prefetch=2,
      preprocessing=ml_collections.ConfigDict(dict(
          mode="paper", normalisation="none", asinh_softening=list(ASINH_SOFTENING_GRZ),
          crop_size=ml_collections.FieldReference(None, field_type=int)))))

  # Mesh and partitioning rules (see lvm_jax.train.sharding).
  c.mesh = ml_collections.ConfigDict(dict(shape=[-1, 1], axes=["data", "fsdp"]))
  c.sharding = ml_collections.ConfigDict(dict(
      batch_axes=["data", "fsdp"], fsdp_min_size=2**14,
      rules=[[r"relative_position_bias_table", "replicated"], [r"\['count'\]", "replicated"]]))

  c.eval = ml_collections.ConfigDict(dict(
      evaluators=["reconstruction"], every_steps=5_000, batch_size=256, knn_k=10,
      blur_sigma_px=1.0))
  c.checkpoint = ml_collections.ConfigDict(dict(every_steps=2_000, keep=3, async_save=True))
  c.log = ml_collections.ConfigDict(dict(
      every_steps=50, tensorboard=True, progress=True, gallery_every_steps=5_000,
      gallery_images=4, profile_steps=[]))
  c.debug = ml_collections.ConfigDict(dict(kill_after_checkpoint_step=0, sigterm_at_step=0))
  return c


def _tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  c.model = models.preset("tiny")
  c.batch_size = 32
  c.num_steps = 600
  c.task.descriptor_weight = 0.3
  c.task.descriptor_orders = [1, 2]
  # g-r, r-z, 9 profile-shape ratios (10 annuli of 2 px), m = 1, 2 amplitudes in 3 rings
  c.model.descriptor_outputs = 17
  c.optimizer.name = "adamw"
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.05
  c.optimizer.warmup_steps = 50
  c.data.files = "/tmp/tiny_survey/*.h5"
  c.data.val_size = 500
  c.data.class_column = "truth/class_id"
  c.data.worker_count = 0
  c.data.max_shift = 2
  c.data.preprocessing.mode = "fixed"
  c.data.preprocessing.crop_size = 96
  c.data.preprocessing.normalisation = "asinh"
  c.mesh.shape = [-1, 1]
  c.sharding.fsdp_min_size = 2**10
  c.eval.evaluators = ["reconstruction", "knn"]
  c.eval.every_steps = 200
  c.eval.batch_size = 100
  c.checkpoint.every_steps = 200
  c.log.every_steps = 10
  c.log.gallery_every_steps = 200
  return c


def _gz1(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  c = _tiny(c)
  c.num_steps = 2000
  c.data.files = "runs/gz1/*.h5"
  c.data.split = "pretrain"
  c.data.val_size = 300
  c.data.class_column = "catalogue/class_id"
  c.data.preprocessing.mode = "resize"
  c.data.preprocessing.crop_size = None
  c.data.preprocessing.normalisation = "display"
  c.eval.every_steps = 500
  c.checkpoint.every_steps = 500
  c.log.gallery_every_steps = 500
  return c


def get_config(arg=None) -> ml_collections.ConfigDict:
  variant, *switches = (arg or "lvm_100m").split(",")
  c = _base()
  if variant == "tiny":
    c = _tiny(c)
  elif variant == "gz1":
    c = _gz1(c)
  elif variant != "lvm_100m":
    raise ValueError(f"unknown variant {variant!r}; known: lvm_100m, tiny, gz1")
  if "paper_recipe" in switches:
    c.task.descriptor_weight = 0.0
    c.task.descriptor_orders = []
    c.model.descriptor_outputs = 0
  if "runlocal" in switches:
    c.num_steps = 20
    c.batch_size = 8
    c.data.val_size = 64
    c.data.worker_count = 0
    c.eval.every_steps = 10
    c.eval.batch_size = 32
    c.checkpoint.every_steps = 10
    c.log.every_steps = 5
    c.log.gallery_every_steps = 10
  return c
