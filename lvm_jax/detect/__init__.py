"""lvm_jax.detect: strong-lens detection in wide fields on the LVM (or a ResNet50) backbone.

Modules: `fields` (simulated and real FITS fields with lens boxes and masks, HDF5 storage),
`metrics` (COCO-style AP for boxes and masks, completeness, false positives, purity),
`model` (the anchor-free detector and its backbones), `targets` (training tiles and dense
targets), `tiling` (fields -> tiles of one compiled shape -> merged detections), `train` (loss,
jitted step, loop, evaluation), `catalogue` (checkpoints, the `lvm-jax detect` catalogue and
overlay), `commands` (`lvm-jax detect`, `lvm-jax simulate-fields`).
"""
