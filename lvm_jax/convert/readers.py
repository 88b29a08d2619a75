"""Read PyTorch, NPZ and safetensors weight files into NumPy, without importing torch.

A `.pth` written by `torch.save` (torch>=1.6) is a zip holding `<archive>/data.pkl`, a pickle
whose persistent ids name raw storages `<archive>/data/<key>`, and `<archive>/byteorder`. The
pickle is parsed by a restricted unpickler that knows only the globals a state dict needs
(tensor rebuild functions, storage types, dtypes, `OrderedDict`); any other global, such as
`os.system` or `builtins.eval`, raises `pickle.UnpicklingError` naming it, before anything runs
(`lvm_jax.convert.torch_pickle`). The legacy (pre-1.6, non-zip) pickle stream is read too; the
older tar format is not.
Zip members are size-checked before they are read: `data.pkl` may expand to at most
`MAX_PICKLE_BYTES`, and a storage member to exactly the bytes its tensors declare, so a small
file that decompresses to gigabytes is refused without allocating them.

Tensors come back as C-contiguous `np.ndarray` copies with the stored dtype: float32, float16,
`ml_dtypes.bfloat16`, int64, ... Storages are read only for the tensors of the chosen state dict.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lvm_jax.convert.torch_pickle import (RESAVE_HINT, RefusedGlobalError,  # noqa: F401
                                          RestrictedUnpickler, Storage, TensorRef,
                                          storage_from_pid)
from lvm_jax.errors import UserError

StateDict = dict[str, np.ndarray]

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pth.tar")
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_PICKLE_BYTES = 256 * 2**20  # a 100M-parameter state dict's pickle is well under 1 MiB


class CheckpointReadError(UserError, ValueError):
  """A weights file that cannot be read: truncated, corrupt, or not a state dict."""


# --- Entry points ----------------------------------------------------------------------------


def load_torch_checkpoint(path: str | os.PathLike, *, opaque_globals: bool = False) -> StateDict:
  """Reads a state dict from `.pth`/`.pt`/`.bin`/`.ckpt`, `.npz` or `.safetensors`.

  Args:
    path: the weights file; its extension picks the reader.
    opaque_globals: torch files only. When True, a global outside the allow-list (e.g. an
      `argparse.Namespace` stored beside the weights) becomes an inert placeholder instead of an
      error; nothing it names is imported or called, and a placeholder inside the chosen state
      dict is still an error.

  Returns:
    `{name: np.ndarray}` in the file's order (safetensors: the file's sorted order). For a torch
    file whose top level is a dict with a `"model"` or `"state_dict"` mapping, that mapping;
    other wrapper entries (epoch, optimizer) are parsed and dropped. For an npz whose names
    start with `state_dict/`, those entries with the prefix removed.

  Raises:
    ValueError: unknown extension.
    CheckpointReadError: truncated or corrupt file, or no state dict in it.
    RefusedGlobalError: (a `pickle.UnpicklingError`) the pickle names a global outside the
      allow-list; nothing was imported or run.
  """
  name = os.fspath(path)
  lower = name.lower()
  if lower.endswith(_TORCH_SUFFIXES):
    return _guarded(name, lambda: _read_torch(name, opaque_globals))
  if lower.endswith(".npz"):
    return _guarded(name, lambda: _read_npz(name))
  if lower.endswith(".safetensors"):
    return _guarded(name, lambda: _read_safetensors(name))
  raise ValueError(
      f"{name}: unknown weights file extension; expected one of "
      f"{', '.join(_TORCH_SUFFIXES)}, .npz, .safetensors")


def strip_prefixes(state_dict: Mapping[str, Any],
                   prefixes: tuple[str, ...] = ("module.", "swin_unet.")) -> dict[str, Any]:
  """Removes any run of leading `prefixes` from each name, e.g. `module.swin_unet.norm.weight`.

  Order is kept. Raises ValueError if two names become the same.
  """
  out: dict[str, Any] = {}
  for name, value in state_dict.items():
    short = _strip_name(name, prefixes)
    if short in out:
      raise ValueError(f"stripping {prefixes} maps two entries to {short!r}")
    out[short] = value
  return out


def _strip_name(name: str, prefixes: tuple[str, ...]) -> str:
  changed = True
  while changed:
    changed = False
    for p in prefixes:
      if p and name.startswith(p):
        name, changed = name[len(p):], True
  return name


def _guarded(path: str, read: Callable[[], StateDict]) -> StateDict:
  """Runs `read`, re-raising low-level failures as errors that name `path`."""
  try:
    return read()
  except CheckpointReadError as e:
    raise CheckpointReadError(f"{path}: {e}") from e
  except RefusedGlobalError as e:
    raise RefusedGlobalError(f"{path}: {e}") from e
  except (pickle.UnpicklingError, zipfile.BadZipFile, zlib.error, EOFError, KeyError,
          struct.error, ValueError, TypeError, IndexError, AttributeError,
          NotImplementedError) as e:  # zipfile: a damaged header naming an unknown compression
    raise CheckpointReadError(
        f"{path}: cannot read ({type(e).__name__}: {e}); truncated or corrupt?") from e


# --- npz and safetensors ---------------------------------------------------------------------


def _read_npz(path: str) -> StateDict:
  """Names -> arrays; if any name starts with `state_dict/`, only those, prefix removed."""
  with np.load(path, allow_pickle=False) as z:
    names = list(z.files)
    prefix = "state_dict/"
    if any(n.startswith(prefix) for n in names):
      return {n[len(prefix):]: z[n] for n in names if n.startswith(prefix)}
    return {n: z[n] for n in names}


def _read_safetensors(path: str) -> StateDict:
  from safetensors import SafetensorError  # pylint: disable=import-outside-toplevel
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  try:
    return dict(load_file(path))
  except SafetensorError as e:
    raise CheckpointReadError(f"cannot read ({e}); truncated or corrupt?") from e


# --- Torch files -----------------------------------------------------------------------------


def _read_torch(path: str, opaque_globals: bool) -> StateDict:
  if zipfile.is_zipfile(path):
    return _read_torch_zip(path, opaque_globals)
  with open(path, "rb") as f:
    head = f.read(2)
  if head[:1] == b"\x80":
    return _read_torch_legacy(path, opaque_globals)
  if head == b"PK":
    raise CheckpointReadError("a damaged zip (truncated or corrupt): no central directory")
  raise CheckpointReadError(
      f"neither a zip nor a pickle (truncated, or an old tar-format checkpoint?); "
      f"{RESAVE_HINT}")


def _archive_prefix(zf: zipfile.ZipFile) -> str:
  """The `<archive>/` folder holding data.pkl."""
  pkls = [n for n in zf.namelist()
          if n.count("/") <= 1 and (n == "data.pkl" or n.endswith("/data.pkl"))]
  if len(pkls) != 1:
    raise CheckpointReadError(f"a zip, but not a torch.save archive (data.pkl: {pkls})")
  return pkls[0][: -len("data.pkl")]


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
  """A zip member, refused before reading when it declares more than `limit` bytes.

  `zipfile` stops decompressing at the declared size, so the check bounds the memory used.
  """
  size = zf.getinfo(name).file_size
  if size > limit:
    raise CheckpointReadError(f"member {name} expands to {size} bytes, more than the "
                              f"{limit} allowed (a zip bomb, or not a state dict)")
  return zf.read(name)


def _read_torch_zip(path: str, opaque_globals: bool) -> StateDict:
  with zipfile.ZipFile(path) as zf:
    prefix = _archive_prefix(zf)
    names = set(zf.namelist())
    byteorder = "little"
    if prefix + "byteorder" in names:
      byteorder = zf.read(prefix + "byteorder").decode("ascii").strip()
    if byteorder not in ("little", "big"):
      raise CheckpointReadError(f"unknown byteorder {byteorder!r}")
    unpickler = RestrictedUnpickler(
        io.BytesIO(_read_member(zf, prefix + "data.pkl", MAX_PICKLE_BYTES)),
        lambda pid: storage_from_pid(pid, legacy=False), opaque_globals)
    state = _select_state_dict(unpickler.load())
    cache: dict[str, bytes] = {}

    def read(storage: Storage) -> bytes:
      if storage.key not in cache:
        nbytes = int(storage.numel) * np.dtype(storage.dtype).itemsize
        cache[storage.key] = _read_member(zf, f"{prefix}data/{storage.key}", nbytes)
      return cache[storage.key]

    return {k: _materialize(ref, read(ref.storage), byteorder, k) for k, ref in state.items()}


def _read_torch_legacy(path: str, opaque_globals: bool) -> StateDict:
  """The pre-1.6 stream: magic, protocol, sys_info, the object, storage keys, raw storages."""
  storages: dict[str, Storage] = {}

  def load_storage(pid: tuple) -> Storage:
    s = storage_from_pid(pid, legacy=True)
    return storages.setdefault(s.key, s)

  with open(path, "rb") as f:
    if RestrictedUnpickler(f, None).load() != _LEGACY_MAGIC:
      raise CheckpointReadError("a pickle, but not a torch checkpoint")
    RestrictedUnpickler(f, None).load()  # protocol version
    RestrictedUnpickler(f, None).load()  # sys_info
    obj = RestrictedUnpickler(f, load_storage, opaque_globals).load()
    keys = RestrictedUnpickler(f, None).load()
    raw = {str(k): _read_legacy_storage(f, storages[str(k)]) for k in keys}
  state = _select_state_dict(obj)
  return {k: _materialize(ref, raw[ref.storage.key], "little", k) for k, ref in state.items()}


def _read_legacy_storage(f: io.BufferedReader, storage: Storage) -> bytes:
  """One storage: int64 little-endian element count, then the little-endian elements."""
  (numel,) = struct.unpack("<q", f.read(8))
  nbytes = numel * storage.dtype.itemsize
  data = f.read(nbytes)
  if numel != storage.numel or len(data) != nbytes:
    raise CheckpointReadError(f"storage {storage.key} is truncated or inconsistent")
  return data


def _select_state_dict(obj: Any) -> dict[str, TensorRef]:
  """The state dict inside `obj`: `obj["model"]`, `obj["state_dict"]`, or `obj` itself."""
  if not isinstance(obj, Mapping):
    raise CheckpointReadError(f"holds a {type(obj).__name__}, not a state dict")
  for key in ("model", "state_dict"):
    if isinstance(obj.get(key), Mapping):
      obj = obj[key]
      break
  for name, value in obj.items():
    if not isinstance(name, str) or not isinstance(value, TensorRef):
      raise CheckpointReadError(
          f"entry {name!r} is a {type(value).__name__}, not a tensor; top-level keys "
          f"are {list(obj)[:8]} (expected a state dict, or a dict with 'model'/'state_dict')")
  return dict(obj)


# --- Tensors from storages -------------------------------------------------------------------


def _materialize(ref: TensorRef, raw: bytes, byteorder: str, name: str) -> np.ndarray:
  """A C-contiguous copy of the strided view `ref` over the storage bytes `raw`."""
  dtype = ref.dtype
  if len(raw) < ref.storage.numel * ref.storage.dtype.itemsize:
    raise CheckpointReadError(f"tensor {name!r}: storage {ref.storage.key} is truncated")
  flat = np.frombuffer(raw, dtype=dtype, count=len(raw) // dtype.itemsize)
  if byteorder != sys.byteorder:
    flat = _byteswap(flat)
  if any(s == 0 for s in ref.size):
    return np.zeros(ref.size, dtype)
  last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
  if ref.offset < 0 or min(ref.stride, default=0) < 0 or last >= flat.size:
    raise CheckpointReadError(
        f"tensor {name!r}: view offset={ref.offset} size={ref.size} stride={ref.stride} "
        f"runs outside its storage of {flat.size} elements")
  view = np.lib.stride_tricks.as_strided(
      flat[ref.offset:], shape=ref.size,
      strides=tuple(s * dtype.itemsize for s in ref.stride), writeable=False)
  return np.array(view, copy=True, order="C")


def _byteswap(flat: np.ndarray) -> np.ndarray:
  """Swaps each scalar's bytes (each half of a complex), for any dtype incl. bfloat16."""
  size = flat.dtype.itemsize // (2 if flat.dtype.kind == "c" else 1)
  if size == 1:
    return flat
  uint = np.dtype(f"u{size}")
  return flat.view(uint).byteswap().view(flat.dtype)
