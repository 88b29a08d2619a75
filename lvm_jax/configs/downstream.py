"""Downstream tasks on the pretrained LVM: `lvm-jax evaluate` (report in WORKDIR/report.md).

    lvm-jax evaluate --config downstream:tiny --workdir /tmp/downstream_tiny
    lvm-jax evaluate --config downstream:quick --workdir /tmp/ds_quick  # tests
    lvm-jax evaluate --config downstream:tiny --workdir W \
        --config.pretrained=/tmp/tiny_run --config.data.files='/tmp/tiny_survey/*.h5'

Variants: `tiny` (the `tiny` LVM at 64 px on the simulated survey, sized for a 2-core CPU),
`quick` (a few steps on a few dozen galaxies: checks the whole path, numbers mean nothing).
The model config, preprocessing and train / test split come from the pretrained checkpoint
(`pretrained`: its workdir; "" takes the first of `pretrained_candidates` that exists).
"""

from __future__ import annotations

import ml_collections


def get_config(arg: str | None = "tiny") -> ml_collections.ConfigDict:
  arg = arg or "tiny"
  c = ml_collections.ConfigDict()
  c.variant = arg
  c.pretrained = ""
  c.pretrained_candidates = ["/tmp/tiny_run"]  # the README's `lvm-jax train ...:tiny` workdir
  c.seed = 0
  # An ingested set (checkpoint pretrained on one of its splits) also reads: label_column ("":
  # catalogue/<the ingest's label column>), train_split, test_splits, per_class (> 0: balanced
  # sets, that many training galaxies per class); see lvm_jax.downstream.ingested.
  c.data = ml_collections.ConfigDict(dict(
      files="/tmp/tiny_survey/*.h5", n_train=1500, n_test=200, degrade_seed=7,
      # a class needs this many training galaxies to enter classification (the simulated
      # survey has 3 strong lenses in 3,000)
      min_class_count=20, label_column="", train_split="train", test_splits=["val", "test"],
      per_class=0))
  c.batch_size = 8
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adamw", lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, warmup_steps=20,
      schedule="cosine", end_lr_factor=0.05, grad_clip=1.0))
  # flux_weight: restoration's aperture-flux term (lvm_jax.downstream.definitions.RestorationTask);
  # restoration_loss: "mse" or "log_mse" (per-image log MSE: heavily and lightly degraded
  # galaxies weigh alike); image_head: restoration's and inpainting's head on the LVM, "conv"
  # (`ImageDecoder` from scratch, width decoder_width, what the ResNets always get) or "lvm" (the
  # pretrained LVM decoder, fine-tuned; lvm_residual: behind a zero-initialised residual conv)
  # names: the tasks ([] = all four; an ingested set: classification, restoration, inpainting)
  c.tasks = ml_collections.ConfigDict(dict(names=[], decoder_width=32, hidden=256,
                                           flux_weight=0.3,
                                           restoration_loss="log_mse", image_head="conv",
                                           lvm_residual=False))
  # fine_tuned: steps of each single-task fine-tuning run (the `Fine_tuned` row; 0 leaves it
  # out); fine_tuned_by_task: a task's own steps there where > 0
  c.steps = ml_collections.ConfigDict(dict(
      pre_train=150, multi=150, resnet=150, fine_tuned=150,
      fine_tuned_by_task=dict(classification=0, restoration=0, inpainting=0, parameters=0)))
  c.active = ml_collections.ConfigDict(dict(every=25, temperature=0.25, floor=0.2, val_rows=32))
  c.resnet = ml_collections.ConfigDict(dict(kinds=["resnet18", "resnet50"], width=16))
  c.few_shot = ml_collections.ConfigDict(dict(per_class=[10, 30, 100], seeds=[0, 1, 2],
                                              steps=80, batch_size=16,
                                              lvm_modes=["frozen", "fine_tuned"]))
  # psf_aware: also fine-tune the LVM to refine the Richardson-Lucy restoration with the true
  # PSF (the report's "Fine_tuned on Richardson-Lucy" row; steps.fine_tuned steps);
  # flux_calibration_rows: training galaxies, degraded afresh, on which that model's flux is
  # calibrated per degradation mode (the "... + flux calibration" row; 0 leaves it out)
  c.restoration = ml_collections.ConfigDict(dict(
      aperture_radius_px=8.0, rl_iterations=[5, 10, 20, 40], wiener_balance=[0.01, 0.03, 0.1, 0.3],
      tune_rows=16, psf_aware=True, flux_calibration_rows=200))
  # fill_sigmas_px: the Gaussians (px) of the normalised-convolution fill of masked pixels
  # (lvm_jax.downstream.definitions.fill_masked), the classical baseline row; prefill: the networks'
  # inpainting input is that fill instead of the image with masked pixels set to 0;
  # mask_channel: the image head also gets the mask (1 = hidden) as a 4th input channel;
  # full_res_convs: the conv head's 3x3 convs at full resolution on [features, input];
  # input_skip: the conv head also sees the input at stride 2; loss: "mse" or "log_mse" (the
  # log of each image's masked-pixel loss: the mean masked-pixel PSNR, the metric, up to a
  # constant)
  c.inpainting = ml_collections.ConfigDict(dict(patch_sizes=[4, 8, 16],
                                                fractions=[0.3, 0.5, 0.7],
                                                fill_sigmas_px=[2.0, 6.0], prefill=False,
                                                mask_channel=True, full_res_convs=3,
                                                input_skip=True, loss="log_mse"))
  c.report = ml_collections.ConfigDict(dict(gallery_rows=4))
  if arg == "quick":
    c.data.n_train, c.data.n_test, c.data.min_class_count = 48, 24, 2
    c.batch_size = 8
    c.steps.update(dict(pre_train=3, multi=3, resnet=3, fine_tuned=2))
    c.active.update(dict(every=2, val_rows=8))
    c.resnet.width = 8
    c.few_shot.update(dict(per_class=[2, 4], seeds=[0, 1, 2], steps=3, batch_size=8))
    c.tasks.update(dict(decoder_width=8, hidden=32))
    c.restoration.update(dict(rl_iterations=[5], wiener_balance=[0.1], tune_rows=2,
                              flux_calibration_rows=4))
    c.inpainting.update(dict(patch_sizes=[8], fractions=[0.5]))
  elif arg != "tiny":
    raise ValueError(f"unknown variant {arg!r}; known: tiny, quick")
  return c
