"""Augmentations for (H, W, ...) galaxy images; every random choice comes from an explicit Generator.

Dihedral convention: k in 0..7 is k = r + 4 f; the image is first flipped left-right (along W)
when f = 1, then rotated r quarter turns counter-clockwise as displayed with row 0 at the top
(`np.rot90(., r)` on axes (0, 1)). k = 0 is the identity; k = 4..7 are reflections, their own
inverses.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from lvm_jax.data.preprocess import Box

N_DIHEDRAL = 8


def _check_rng(rng) -> np.random.Generator:
  if not isinstance(rng, np.random.Generator):
    raise TypeError(f"pass an explicit np.random.Generator, got {type(rng).__name__}")
  return rng


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
  """The k-th of the 8 flips/quarter-turns of an (H, W, ...) image (convention in the module doc)."""
  k = int(k)
  if not 0 <= k < N_DIHEDRAL:
    raise ValueError(f"dihedral index must be in 0..7, got {k}")
  image = np.asarray(image)
  if k >= 4:
    image = image[:, ::-1]
  return np.ascontiguousarray(np.rot90(image, k % 4, axes=(0, 1)))


def dihedral_inverse(k: int) -> int:
  """j such that dihedral(dihedral(x, k), j) == x."""
  k = int(k)
  if not 0 <= k < N_DIHEDRAL:
    raise ValueError(f"dihedral index must be in 0..7, got {k}")
  return k if k >= 4 else (4 - k) % 4


def dihedral_compose(k1: int, k2: int) -> int:
  """k such that dihedral(dihedral(x, k1), k2) == dihedral(x, k)."""
  r1, f1 = k1 % 4, k1 // 4
  r2, f2 = k2 % 4, k2 // 4
  # R^r2 F^f2 R^r1 F^f1 = R^(r2 + (-1)^f2 r1) F^(f1 xor f2), since F R^r = R^-r F.
  r = (r2 + (-r1 if f2 else r1)) % 4
  return r + 4 * (f1 ^ f2)


def random_dihedral(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
  """A uniformly chosen dihedral transform: (transformed image, k)."""
  k = int(_check_rng(rng).integers(N_DIHEDRAL))
  return dihedral(image, k), k


def jitter_crop(image: np.ndarray, size: int, rng: np.random.Generator,
                max_offset: int | None = None) -> tuple[np.ndarray, Box]:
  """A (size, size) crop about the centre, shifted by integer offsets uniform in [-max, max].

  max_offset None allows any shift that keeps the crop inside the image; offsets are clipped to the
  image. Returns (crop (size, size, ...), box (x0, y0, x1, y1)).
  """
  _check_rng(rng)
  image = np.asarray(image)
  h, w = image.shape[:2]
  if not 0 < size <= min(h, w):
    raise ValueError(f"crop size {size} does not fit an image of shape {image.shape}")
  y_c, x_c = h // 2 - size // 2, w // 2 - size // 2
  lim = max(h, w) if max_offset is None else int(max_offset)
  if lim < 0:
    raise ValueError(f"max_offset must be >= 0, got {max_offset}")
  dy, dx = rng.integers(-lim, lim + 1, size=2)
  y0 = int(np.clip(y_c + dy, 0, h - size))
  x0 = int(np.clip(x_c + dx, 0, w - size))
  return image[y0:y0 + size, x0:x0 + size], (x0, y0, x0 + size, y0 + size)


def rotate(image: np.ndarray, angle_deg: float, order: int = 1) -> np.ndarray:
  """(H, W, ...) rotated counter-clockwise (as displayed, row 0 at the top) about the centre.

  Same shape out; corners come from reflecting the image (`mode='reflect'`), interpolation of
  `order` (1 = bilinear). Keeps the input's float dtype.
  """
  image = np.asarray(image)
  out = ndimage.rotate(image, angle_deg, axes=(1, 0), reshape=False, order=order, mode="reflect")
  return out.astype(image.dtype, copy=False)


def random_rotation(image: np.ndarray, rng: np.random.Generator, max_angle_deg: float = 180.0,
                    order: int = 1) -> tuple[np.ndarray, float]:
  """Rotation by an angle uniform in [-max_angle_deg, max_angle_deg]: (rotated, angle in degrees)."""
  angle = float(_check_rng(rng).uniform(-max_angle_deg, max_angle_deg))
  return rotate(image, angle, order), angle


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Random transforms of one record, drawn from a Generator seeded by (seed, epoch, index).

  max_shift: translation of the input stamp by integer offsets uniform in [-max_shift, max_shift]
    pixels on each axis (the stamp is reflect-padded, then cropped back to its size), before the
    crop/resize; 0 for none.
  dihedral: apply one of the 8 flips/quarter-turns (`dihedral`) to the output.
  """

  max_shift: int = 4
  dihedral: bool = True

  def apply_to_stamp(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, C) translated by (dy, dx) drawn from `rng`; same shape, reflected edges."""
    if self.max_shift <= 0:
      return image
    m = int(self.max_shift)
    h, w = image.shape[:2]
    dy, dx = rng.integers(-m, m + 1, size=2)
    padded = np.pad(image, ((m, m), (m, m), (0, 0)), mode="reflect")
    return np.ascontiguousarray(padded[m + dy:m + dy + h, m + dx:m + dx + w])

  def apply_to_output(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    if not self.dihedral:
      return image, -1
    return random_dihedral(image, rng)
