"""lvm-jax: the large vision model of Fu et al. (2024) for galaxy images, in JAX/Flax.

Sub-packages, one concern each:
  models   the SUNet Swin-UNet (encoder, decoder, heads) and its presets
  convert  loading the published PyTorch weights (no torch needed)
  data     survey formats, the paper's preprocessing, augmentations, pipelines
  sim      the simulated survey (GalSim) that is the embedded default
  train    sharded training, checkpoints
  hitl     the human-in-the-loop session and app
"""

__version__ = "0.1.0"
