"""Downstream data sets from survey files: preprocessed images, degraded copies, labels.

The split is the pretraining split (`lvm_jax.train.data.split` with the pretraining config's
`val_size` and `split_seed`), so the test galaxies were never seen in pretraining. Each galaxy's
g, r, z stamp (nanomaggies) is cut to the pretraining crop (fixed mode: the centre `crop_size`
native pixels), degraded there in linear flux (`lvm_jax.data.degrade`, both modes), and clean
and degraded crops go through the same preprocessing as pretraining (resize to the model's
size, asinh). Arrays (N rows):

  image (N, S, S, 3) clean network input; degraded (N, S, S, 3) (train: paper mode on even rows,
  physical on odd rows, as `mode` (N,) says; test: `degraded_paper` and `degraded_physical`
  both); label (N,) class id; params (N, 6) raw `lvm_jax.downstream.labels.PARAMETERS`; z_spec,
  redshift (N,); index (N,) record index in the survey. With `keep_flux` also `flux` (N, C, C, 3)
  crops and the blur kernels, for the classical baselines. `deconvolved` turns the degraded
  flux into network-space Richardson-Lucy restorations with the true kernels (the input of
  PSF-aware restoration); `scale_flux` multiplies network-space images' flux by a factor (the
  PSF-aware row's flux calibration).

Physical mode: the target seeing is the stamp's worst band seeing (truth psf_fwhm_*) times a
factor uniform in [1.3, 2.0], the added noise 0.5-2 times the sky noise, per galaxy.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lvm_jax.data import degrade as degrade_lib
from lvm_jax.data import pipeline as pipeline_lib
from lvm_jax.data import preprocess as preprocess_lib
from lvm_jax.data import psf as psf_lib
from lvm_jax.data.hdf5_source import SslLegacySurveySource
from lvm_jax.downstream import labels as labels_lib
from lvm_jax.train import data as train_data

CLASS_COLUMN = "truth/class_id"
PSF_COLUMNS = ("truth/psf_fwhm_g", "truth/psf_fwhm_r", "truth/psf_fwhm_z")
EXTRA_COLUMNS = ("z_spec", "truth/redshift")


def open_survey(files) -> SslLegacySurveySource:
  paths = train_data.survey_paths(files)
  return SslLegacySurveySource(paths, columns=(CLASS_COLUMN, *labels_lib.TRUTH_COLUMNS,
                                               *PSF_COLUMNS, *EXTRA_COLUMNS))


def split_indices(n: int, val_size: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train pool, test) record indices: the pretraining split."""
  return train_data.split(n, val_size, split_seed)


def _physical(crop, record, rng):
  current = np.array([float(record[c]) for c in PSF_COLUMNS])
  target = float(current.max()) * rng.uniform(1.3, 2.0)
  return degrade_lib.degrade(crop, rng, "physical", current_fwhm_arcsec=current,
                             target_fwhm_arcsec=target, noise_multiple=rng.uniform(0.5, 2.0))


def kernels_of(params: dict[str, Any]) -> list[np.ndarray | None]:
  """The per-band blur kernels a `degrade` call used (from its returned parameters)."""
  if params["mode"] == "paper":
    return [psf_lib.moffat_kernel(params["fwhm_px"], params["beta"])] * 3
  return [psf_lib.moffat_kernel(f, params["beta"]) if f > 1e-6 else None
          for f in params["kernel_fwhm_px"]]


def _finite_record(source, index) -> tuple[dict[str, Any], np.ndarray]:
  """(record, float32 stamp) of record `index`; ValueError naming its file and row if any pixel
  is NaN or infinite."""
  record = source[int(index)]
  stamp = np.asarray(record["image"], np.float32)
  if not np.isfinite(stamp).all():
    raise ValueError(f"{record['source_file']} index {record['source_index']}: "
                     "image has NaN/inf pixels")
  return record, stamp


def build(source, indices: Sequence[int], prep: preprocess_lib.Preprocessing, seed: int, *,
          both_modes: bool = False, keep_flux: bool = False) -> dict[str, Any]:
  """The arrays of the module docstring for records `indices` of `source`.

  Raises ValueError naming the file and row of any record with non-finite pixels.
  """
  if prep.mode != "fixed":
    raise ValueError(f"downstream data sets need fixed-mode preprocessing, got {prep.mode!r}")
  crop_size = prep.crop_size or prep.out_size
  flux_prep = preprocess_lib.Preprocessing(**{**prep.to_dict(), "crop_size": crop_size})
  n, s = len(indices), prep.out_size
  modes = ("paper", "physical") if both_modes else ("mixed",)
  out: dict[str, Any] = {"image": np.empty((n, s, s, 3), np.float32),
                         "label": np.empty(n, np.int64), "params": np.empty((n, 6), np.float32),
                         "z_spec": np.empty(n, np.float32), "redshift": np.empty(n, np.float32),
                         "index": np.asarray(indices, np.int64)}
  for m in modes:
    key = "degraded" if m == "mixed" else f"degraded_{m}"
    out[key] = np.empty((n, s, s, 3), np.float32)
  if not both_modes:
    out["mode"] = np.where(np.arange(n) % 2 == 0, "paper", "physical")
  if keep_flux:
    out["flux"] = np.empty((n, crop_size, crop_size, 3), np.float32)
    out["kernels"] = {m: [] for m in modes}
    out["degraded_flux"] = {m: [] for m in modes}
  truth = {c: np.empty(n) for c in labels_lib.TRUTH_COLUMNS}
  for row, i in enumerate(indices):
    record, stamp = _finite_record(source, i)
    crop, _ = preprocess_lib.fixed_crop(stamp, crop_size)
    out["image"][row] = pipeline_lib.apply_preprocessing(flux_prep, crop)[0]
    rng = np.random.default_rng([seed, int(i)])
    for m in modes:
      mode = m if m != "mixed" else out["mode"][row]
      if mode == "paper":
        deg, params = degrade_lib.degrade(crop, rng, "paper")
      else:
        deg, params = _physical(crop, record, rng)
      key = "degraded" if m == "mixed" else f"degraded_{m}"
      out[key][row] = pipeline_lib.apply_preprocessing(flux_prep, deg)[0]
      if keep_flux:
        out["kernels"][m].append(kernels_of(params))
        out["degraded_flux"][m].append(deg)
    if keep_flux:
      out["flux"][row] = crop
    out["label"][row] = int(record[CLASS_COLUMN])
    for c in labels_lib.TRUTH_COLUMNS:
      truth[c][row] = float(record[c])
    out["z_spec"][row] = float(record["z_spec"])
    out["redshift"][row] = float(record["truth/redshift"])
  out["params"][:] = labels_lib.parameter_targets(truth)
  return out


def build_labelled(source, indices: Sequence[int], labels: Sequence[int],
                   prep: preprocess_lib.Preprocessing, seed: int, *, both_modes: bool = False
                   ) -> dict[str, Any]:
  """The arrays of a labelled set without truth columns (an ingested one), rows `indices`.

  image (N, S, S, 3): the checkpoint's preprocessing of the whole stamp (any mode);
  degraded (N, S, S, 3): the paper-mode degradation (`lvm_jax.data.degrade`: Moffat blur of
  2-8 px FWHM, noise on the 0-255 display scale) of that network image, seeded per record
  (`degraded_paper` with `both_modes`, the test set's key; the physical mode needs the PSF
  columns only a simulated survey has); mode (N,) "paper" (training sets); label (N,) int64
  `labels`; index (N,) record index. Raises ValueError naming the file and row of a record
  with non-finite pixels.
  """
  n, s = len(indices), prep.out_size
  out: dict[str, Any] = {"image": np.empty((n, s, s, 3), np.float32),
                         "label": np.asarray(labels, np.int64).copy(),
                         "index": np.asarray(indices, np.int64)}
  key = "degraded_paper" if both_modes else "degraded"
  out[key] = np.empty((n, s, s, 3), np.float32)
  if not both_modes:
    out["mode"] = np.full(n, "paper")
  if len(out["label"]) != n:
    raise ValueError(f"{n} records but {len(out['label'])} labels")
  for row, i in enumerate(indices):
    record, stamp = _finite_record(source, i)
    image = pipeline_lib.apply_preprocessing(prep, stamp)[0]
    out["image"][row] = image
    out[key][row] = degrade_lib.degrade(image, np.random.default_rng([seed, int(i)]), "paper")[0]
  return out


def to_flux(images: np.ndarray, prep: preprocess_lib.Preprocessing) -> np.ndarray:
  """Network-space (asinh) images back to linear flux (nanomaggies per output pixel)."""
  if prep.normalisation != "asinh":
    return np.asarray(images, np.float64)
  return preprocess_lib.inverse_asinh_stretch(np.asarray(images, np.float64),
                                              prep.asinh_softening)


def to_network(flux: np.ndarray, prep: preprocess_lib.Preprocessing) -> np.ndarray:
  """(C, C, 3) linear flux crop (nanomaggies) -> (S, S, 3) network-space image, as `build` does."""
  flux_prep = preprocess_lib.Preprocessing(**{**prep.to_dict(), "crop_size": flux.shape[0]})
  return pipeline_lib.apply_preprocessing(flux_prep, flux)[0]


def scale_flux(images: np.ndarray, factor: float, prep: preprocess_lib.Preprocessing
               ) -> np.ndarray:
  """Network-space images whose linear flux is `factor` times that of `images` (same shape).

  Under the asinh stretch y = asinh(x / b) the softening b cancels: asinh(factor * sinh(y)).
  """
  y = np.asarray(images, np.float64)
  out = np.arcsinh(factor * np.sinh(y)) if prep.normalisation == "asinh" else factor * y
  return out.astype(np.float32)


def deconvolved(degraded_flux: Sequence[np.ndarray], kernels: Sequence, strengths: Sequence[float],
                prep: preprocess_lib.Preprocessing, method: str = "richardson_lucy"
                ) -> np.ndarray:
  """(N, S, S, 3) float32 network-space restorations with the true kernels.

  degraded_flux: N (C, C, 3) degraded crops (nanomaggies); kernels: each crop's per-band kernels
  (`kernels_of`); strengths: each crop's Richardson-Lucy iteration count (or Wiener balance);
  method: `lvm_jax.downstream.baselines.deconvolve`'s.
  """
  from lvm_jax.downstream import baselines
  return np.stack([to_network(baselines.deconvolve(x, k, method, n), prep)
                   for x, k, n in zip(degraded_flux, kernels, strengths)]).astype(np.float32)


def few_shot_subset(labels: np.ndarray, per_class: int, classes: Sequence[int], seed: int
                    ) -> np.ndarray:
  """Row indices: `per_class` random rows of each class (all of a class that has fewer)."""
  rng = np.random.default_rng(seed)
  rows = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
  return np.sort(np.concatenate(rows))
