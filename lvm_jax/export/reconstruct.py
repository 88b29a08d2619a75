"""Reconstruct FITS cutouts with a checkpoint and draw input / reconstruction / residual panels.

    lvm-jax reconstruct --checkpoint runs/tiny --out recon/ cutout_a.fits cutout_b.fits

Each cutout is read band by band (`read_fits_cutout`), validated, preprocessed exactly as the
checkpoint's metadata records (`meta["preprocessing"]`), and all of them go through the network
in one float32 batch. Per cutout a PNG (`PNG_SIZE_PX`, three panels) is written:

1. the network input as the Legacy Survey `dr2` colour composite (asinh normalisation inverted
   first, so both colour panels are in nanomaggies);
2. the reconstruction, the same way;
3. the r-band residual (reconstruction - input) / sky sigma of the input, on a diverging map
   clipped at +-`RESIDUAL_LIMIT_SIGMA`.

`reconstruct.json` holds per cutout the mean squared error in the network's input units (over
all pixels and bands, the reconstruction loss), the r-band sky sigma, and the provenance.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Callable, Sequence

import numpy as np

from lvm_jax.data.fits_cutout import cutout_id, read_fits_cutout
from lvm_jax.data.preprocess import (DISPLAY_MAX, Preprocessing, display_rgb,
                                     inverse_asinh_stretch)
from lvm_jax.data.validate import validate_image

BANDS = ("g", "r", "z")
R_BAND = BANDS.index("r")
FIGSIZE_IN = (10.0, 3.3)  # width, height in inches
DPI = 100
PNG_SIZE_PX = (int(FIGSIZE_IN[0] * DPI), int(FIGSIZE_IN[1] * DPI))  # (width, height)
RESIDUAL_LIMIT_SIGMA = 5.0
SKY_BORDER_FRACTION = 0.125  # the outer 1/8 of each side is taken as sky
# asinh values beyond this are clipped before `sinh` for display (sinh(50) ~ 3e21 nanomaggies,
# far above any galaxy; an untrained network can output much larger values).
MAX_STRETCHED = 50.0


@dataclasses.dataclass(frozen=True)
class PreparedCutout:
  """One cutout ready for the network.

  `inputs` (S, S, 3) float32 in the network's units (nanomaggies, or asinh-stretched), S the
  preprocessing's `out_size`; `nanomaggies` the same image before normalisation; `info` from
  `Preprocessing.apply` (crop box, arcsec per output pixel).
  """

  path: pathlib.Path
  id: str
  inputs: np.ndarray
  nanomaggies: np.ndarray
  ra: float
  dec: float
  info: dict[str, Any]


def prepare_cutout(path: str | os.PathLike, preprocessing: Preprocessing) -> PreparedCutout:
  """Reads, validates and preprocesses one g, r, z FITS cutout.

  Raises:
    ValueError: a band is missing, or the image is bad (NaN, constant...); the message names the
      file. `BadImageError` is a `ValueError`.
    UnreadableFileError: the file is truncated or corrupt.
  """
  path = pathlib.Path(path)
  cutout = read_fits_cutout(path, BANDS)
  image = validate_image(cutout.image, expected_bands=len(BANDS), source=str(path))
  inputs, info = preprocessing.apply(image)
  validate_image(inputs, expected_shape=(preprocessing.out_size,) * 2, source=f"{path} (preprocessed)",
                 allow_constant_band=True)
  return PreparedCutout(path=path, id=cutout_id(path), inputs=inputs,
                        nanomaggies=to_nanomaggies(inputs, preprocessing), ra=cutout.ra,
                        dec=cutout.dec, info=info)


def to_nanomaggies(x: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
  """(..., H, W, 3) network-unit image -> float32 nanomaggies (inverts an asinh normalisation;
  a 'display' one goes back to 8-bit display units)."""
  x = np.asarray(x, np.float32)
  if preprocessing.normalisation == "asinh":
    x = inverse_asinh_stretch(np.clip(x, -MAX_STRETCHED, MAX_STRETCHED),
                              preprocessing.asinh_softening)
  elif preprocessing.normalisation == "display":
    x = x * np.float32(DISPLAY_MAX)
  return x


def sky_sigma(band: np.ndarray, border_fraction: float = SKY_BORDER_FRACTION, clip: float = 3.0,
              iterations: int = 5) -> float:
  """Sky noise (same units as `band`, (H, W)): 3-sigma-clipped MAD of the stamp's outer border."""
  h, w = band.shape
  bh, bw = max(1, int(h * border_fraction)), max(1, int(w * border_fraction))
  mask = np.ones((h, w), bool)
  mask[bh:h - bh, bw:w - bw] = False
  x = np.asarray(band, np.float64)[mask]
  for _ in range(iterations):
    med = np.median(x)
    s = 1.4826 * np.median(np.abs(x - med))
    if not s > 0:
      break
    x = x[np.abs(x - med) < clip * s]
  s = 1.4826 * float(np.median(np.abs(x - np.median(x))))
  return s if s > 0 else float(np.std(band)) or 1.0


def mse(reconstruction: np.ndarray, inputs: np.ndarray) -> np.ndarray:
  """Per-image mean squared error (N,) float64 over pixels and bands of (N, H, W, C) arrays."""
  diff = np.asarray(reconstruction, np.float64) - np.asarray(inputs, np.float64)
  return (diff**2).reshape(len(diff), -1).mean(axis=1)


def reconstruct_fn(config: Any, params: Any) -> Callable[[np.ndarray], np.ndarray]:
  """A float32 function (N, S, S, 3) -> (N, S, S, 3) reconstruction, jitted, weights bound."""
  import jax
  import jax.numpy as jnp

  from lvm_jax import models
  module = models.build(config)
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)

  @jax.jit
  def apply(p, images):
    out = module.apply({"params": p}, images, train=False)
    return out["reconstruction"].astype(jnp.float32)

  return lambda images: np.asarray(apply(params, jnp.asarray(images, jnp.float32)))


def save_panels(path: str | os.PathLike, input_nmgy: np.ndarray, recon_nmgy: np.ndarray,
                title: str = "") -> pathlib.Path:
  """Writes the three-panel PNG (`PNG_SIZE_PX`) for one (S, S, 3) g, r, z pair in nanomaggies."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  sigma = sky_sigma(input_nmgy[..., R_BAND])
  residual = (recon_nmgy[..., R_BAND] - input_nmgy[..., R_BAND]) / sigma
  fig, axes = plt.subplots(1, 3, figsize=FIGSIZE_IN, dpi=DPI)
  panels = [(display_rgb(input_nmgy), "input (g, r, z)"),
            (display_rgb(recon_nmgy), "reconstruction")]
  for ax, (rgb, label) in zip(axes, panels):
    ax.imshow(rgb, origin="lower", interpolation="nearest")
    ax.set_title(label, fontsize=9)
  lim = RESIDUAL_LIMIT_SIGMA
  shown = axes[2].imshow(residual, origin="lower", interpolation="nearest", cmap="RdBu_r",
                         vmin=-lim, vmax=lim)
  axes[2].set_title(f"r residual / sky sigma ({sigma:.2g} nmgy)", fontsize=9)
  for ax in axes:
    ax.set_axis_off()
  fig.subplots_adjust(left=0.01, right=0.93, bottom=0.03, top=0.86, wspace=0.05)
  colorbar_axes = fig.add_axes((0.94, 0.1, 0.012, 0.7))
  fig.colorbar(shown, cax=colorbar_axes).ax.tick_params(labelsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=DPI)
  plt.close(fig)
  return path


def _png_names(ids: Sequence[str]) -> list[str]:
  """`<id>.png`, with `-2`, `-3`... for ids seen before (same file name in two folders)."""
  seen: dict[str, int] = {}
  names = []
  for i in ids:
    seen[i] = seen.get(i, 0) + 1
    names.append(f"{i}.png" if seen[i] == 1 else f"{i}-{seen[i]}.png")
  return names


def reconstruct_files(checkpoint_dir: str | os.PathLike, paths: Sequence[str | os.PathLike],
                      out_dir: str | os.PathLike) -> dict[str, Any]:
  """Runs the whole job; returns the `reconstruct.json` content (also written to `out_dir`).

  Raises:
    ValueError, UnreadableFileError: a bad input, naming its file (nothing is written then), or
      preprocessing metadata that does not fit the model.
  """
  from lvm_jax import checkpoint
  from lvm_jax import provenance

  if not pathlib.Path(checkpoint_dir).is_dir():  # the Orbax manager would create it
    raise FileNotFoundError(f"no checkpoint directory {checkpoint_dir}")
  restored = checkpoint.restore(checkpoint_dir)
  config, meta = restored["config"]["model"], restored["meta"]
  if "preprocessing" not in meta:
    raise ValueError(f"{checkpoint_dir}: checkpoint metadata records no preprocessing")
  preprocessing = Preprocessing.from_dict(meta["preprocessing"])
  if preprocessing.out_size != config["img_size"]:
    raise ValueError(f"{checkpoint_dir}: preprocessing out_size {preprocessing.out_size} != "
                     f"model img_size {config['img_size']}")
  cutouts = [prepare_cutout(p, preprocessing) for p in paths]  # all checked before any output
  inputs = np.stack([c.inputs for c in cutouts])
  reconstruction = reconstruct_fn(config, restored["params"])(inputs)
  errors = mse(reconstruction, inputs)
  recon_nmgy = to_nanomaggies(reconstruction, preprocessing)

  out_dir = pathlib.Path(out_dir)
  rows = []
  for cutout, recon, err, name in zip(cutouts, recon_nmgy, errors, _png_names([c.id for c in cutouts])):
    png = save_panels(out_dir / name, cutout.nanomaggies, recon,
                      title=f"{cutout.id}   MSE {err:.4g} ({preprocessing.normalisation} units)")
    rows.append({"file": str(cutout.path), "id": cutout.id, "png": str(png), "mse": float(err),
                 "sky_sigma_r_nmgy": sky_sigma(cutout.nanomaggies[..., R_BAND]),
                 "ra": cutout.ra, "dec": cutout.dec, "box": list(cutout.info["box"]),
                 "arcsec_per_pixel": cutout.info["arcsec_per_pixel"]})
  report = {
      "mse_units": ("asinh units^2" if preprocessing.normalisation == "asinh"
                    else "nanomaggies^2"),
      "cutouts": rows,
      "provenance": provenance.provenance(
          checkpoint={"path": str(pathlib.Path(checkpoint_dir).resolve()),
                      "step": int(restored["step"]), "git_sha": meta.get("git_sha"),
                      "source": meta.get("source")},
          preprocessing=preprocessing.to_dict(), model=dict(config)),
  }
  (out_dir / "reconstruct.json").write_text(json.dumps(report, indent=2) + "\n")
  return report
