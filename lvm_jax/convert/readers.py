"""Read PyTorch, NPZ and safetensors weight files into NumPy, without importing torch.

A `.pth` written by `torch.save` (torch>=1.6) is a zip holding `<archive>/data.pkl`, a pickle
whose persistent ids name raw storages `<archive>/data/<key>`, and `<archive>/byteorder`. The
pickle is parsed by a restricted unpickler that knows only the globals a state dict needs
(tensor rebuild functions, storage types, dtypes, `OrderedDict`); any other global, such as
`os.system` or `builtins.eval`, raises `pickle.UnpicklingError` naming it, before anything runs.
The legacy (pre-1.6, non-zip) pickle stream is read too; the older tar format is not.
Zip members are size-checked before they are read: `data.pkl` may expand to at most
`MAX_PICKLE_BYTES`, and a storage member to exactly the bytes its tensors declare, so a small
file that decompresses to gigabytes is refused without allocating them.

Tensors come back as C-contiguous `np.ndarray` copies with the stored dtype: float32, float16,
`ml_dtypes.bfloat16`, int64, ... Storages are read only for the tensors of the chosen state dict.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import ml_dtypes
import numpy as np

from lvm_jax.errors import UserError

StateDict = dict[str, np.ndarray]

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pth.tar")
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_RESAVE_HINT = "re-save with torch>=1.6 (zip format)"
MAX_PICKLE_BYTES = 256 * 2**20  # a 100M-parameter state dict's pickle is well under 1 MiB


class CheckpointReadError(UserError, ValueError):
  """A weights file that cannot be read: truncated, corrupt, or not a state dict."""


class RefusedGlobalError(UserError, pickle.UnpicklingError):
  """The pickle names a global outside the allow-list (it was not imported or called)."""


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
          struct.error, ValueError, TypeError, IndexError, AttributeError) as e:
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


# --- Restricted unpickling -------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
}

# torch dtype globals (`torch.uint16`), emitted by `_rebuild_tensor_v3` for the newer dtypes.
_TORCH_DTYPES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32,
    "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_,
    "complex64": np.complex64, "cfloat": np.complex64,
    "complex128": np.complex128, "cdouble": np.complex128,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2,
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
  """The pickled storage class, e.g. `torch.FloatStorage`; UntypedStorage holds uint8."""
  name: str
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _DType:
  """A pickled `torch.<dtype>` global."""
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _Storage:
  """A storage named by a persistent id: `numel` elements of `dtype` under `key`."""
  key: str
  dtype: np.dtype
  numel: int


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  """A tensor view of a storage, in elements of `dtype`; read later by `_materialize`."""
  storage: _Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]
  dtype: np.dtype


def _check_view(storage: Any, offset: Any, size: Any, stride: Any) -> None:
  if not isinstance(storage, _Storage):
    raise pickle.UnpicklingError(f"tensor built from {type(storage).__name__}, not a storage")
  ints = [offset, *size, *stride] if isinstance(size, tuple) and isinstance(stride, tuple) else []
  if (not ints or len(size) != len(stride) or not all(type(i) is int for i in ints)
      or min(size, default=0) < 0):
    raise pickle.UnpicklingError(f"bad tensor view: offset={offset!r} size={size!r}")


def _rebuild_tensor(storage, storage_offset, size, stride) -> _TensorRef:
  _check_view(storage, storage_offset, size, stride)
  return _TensorRef(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _TensorRef:
  del requires_grad, backward_hooks, metadata
  return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None) -> _TensorRef:
  """Newer dtypes: an untyped (byte) storage viewed as `dtype`."""
  del requires_grad, backward_hooks, metadata
  _check_view(storage, storage_offset, size, stride)
  if not isinstance(dtype, _DType):
    raise pickle.UnpicklingError(f"_rebuild_tensor_v3 given dtype {dtype!r}")
  return _TensorRef(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
  del requires_grad, backward_hooks, state
  if not isinstance(data, _TensorRef):
    raise pickle.UnpicklingError(f"parameter built from {type(data).__name__}")
  return data


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
  """`_codecs.encode` as protocol-2 pickles use it for bytes; only latin-1 is allowed."""
  if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
    raise RefusedGlobalError(f"_codecs.encode with encoding {encoding!r} refused")
  return text.encode("latin1")


_ALLOWED_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "_codecs.encode": _latin1_encode,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
}


def _allowed_global(module: str, name: str) -> Any:
  """The stand-in for an allowed global, or None."""
  full = f"{module}.{name}"
  if full in _ALLOWED_GLOBALS:
    return _ALLOWED_GLOBALS[full]
  if module == "torch" and name in _STORAGE_DTYPES:
    return _StorageType(name, _STORAGE_DTYPES[name])
  if full in ("torch.UntypedStorage", "torch.storage.UntypedStorage"):
    return _StorageType("UntypedStorage", np.dtype(np.uint8))
  if module == "torch" and name in _TORCH_DTYPES:
    return _DType(np.dtype(_TORCH_DTYPES[name]))
  return None


class _Opaque:
  """An inert placeholder for a refused global (only with `opaque_globals=True`).

  It records what the pickle passes to it and never imports or calls anything.
  """
  global_name = "?"

  def __new__(cls, *args, **kwargs):
    self = super().__new__(cls)
    self.args, self.kwargs, self.state, self.items = args, kwargs, None, []
    return self

  def __init__(self, *args, **kwargs):
    del args, kwargs  # Kept by __new__, which NEWOBJ calls without __init__.

  def __setstate__(self, state):
    self.state = state

  def __setitem__(self, key, value):
    self.items.append((key, value))

  def append(self, value):
    self.items.append(value)

  def extend(self, values):
    self.items.extend(values)

  def __repr__(self):
    return f"<opaque {self.global_name}>"


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only `_allowed_global`s; storages go through `load_storage`."""

  def __init__(self, file, load_storage: Callable[[tuple], _Storage] | None,
               opaque_globals: bool = False):
    super().__init__(file)
    self._load_storage = load_storage
    self._opaque_globals = opaque_globals

  def find_class(self, module: str, name: str) -> Any:
    found = _allowed_global(module, name)
    if found is not None:
      return found
    if self._opaque_globals:
      return type(f"Opaque_{name}", (_Opaque,), {"global_name": f"{module}.{name}"})
    raise RefusedGlobalError(
        f"refused global '{module}.{name}': a weights file needs only tensors and containers "
        "(pass opaque_globals=True to keep such entries as inert placeholders)")

  def persistent_load(self, pid: Any) -> Any:
    if self._load_storage is None:
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    return self._load_storage(pid)


def _storage_from_pid(pid: Any, legacy: bool) -> _Storage:
  """('storage', type, key, location, numel[, view_metadata]) -> _Storage."""
  if not (isinstance(pid, tuple) and len(pid) == (6 if legacy else 5) and pid[0] == "storage"):
    raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
  _, stype, key, _, numel = pid[:5]
  if not isinstance(stype, _StorageType) or type(numel) is not int or numel < 0:
    raise pickle.UnpicklingError(f"bad storage record {pid!r}")
  if legacy and pid[5] is not None:
    raise pickle.UnpicklingError(f"storage views are not supported; {_RESAVE_HINT}")
  return _Storage(str(key), stype.dtype, numel)


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
      f"{_RESAVE_HINT}")


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
    unpickler = _RestrictedUnpickler(
        io.BytesIO(_read_member(zf, prefix + "data.pkl", MAX_PICKLE_BYTES)),
        lambda pid: _storage_from_pid(pid, legacy=False), opaque_globals)
    state = _select_state_dict(unpickler.load())
    cache: dict[str, bytes] = {}

    def read(storage: _Storage) -> bytes:
      if storage.key not in cache:
        nbytes = int(storage.numel) * np.dtype(storage.dtype).itemsize
        cache[storage.key] = _read_member(zf, f"{prefix}data/{storage.key}", nbytes)
      return cache[storage.key]

    return {k: _materialize(ref, read(ref.storage), byteorder, k) for k, ref in state.items()}


def _read_torch_legacy(path: str, opaque_globals: bool) -> StateDict:
  """The pre-1.6 stream: magic, protocol, sys_info, the object, storage keys, raw storages."""
  storages: dict[str, _Storage] = {}

  def load_storage(pid: tuple) -> _Storage:
    s = _storage_from_pid(pid, legacy=True)
    return storages.setdefault(s.key, s)

  with open(path, "rb") as f:
    if _RestrictedUnpickler(f, None).load() != _LEGACY_MAGIC:
      raise CheckpointReadError("a pickle, but not a torch checkpoint")
    _RestrictedUnpickler(f, None).load()  # protocol version
    _RestrictedUnpickler(f, None).load()  # sys_info
    obj = _RestrictedUnpickler(f, load_storage, opaque_globals).load()
    keys = _RestrictedUnpickler(f, None).load()
    raw = {str(k): _read_legacy_storage(f, storages[str(k)]) for k in keys}
  state = _select_state_dict(obj)
  return {k: _materialize(ref, raw[ref.storage.key], "little", k) for k, ref in state.items()}


def _read_legacy_storage(f: io.BufferedReader, storage: _Storage) -> bytes:
  """One storage: int64 little-endian element count, then the little-endian elements."""
  (numel,) = struct.unpack("<q", f.read(8))
  nbytes = numel * storage.dtype.itemsize
  data = f.read(nbytes)
  if numel != storage.numel or len(data) != nbytes:
    raise CheckpointReadError(f"storage {storage.key} is truncated or inconsistent")
  return data


def _select_state_dict(obj: Any) -> dict[str, _TensorRef]:
  """The state dict inside `obj`: `obj["model"]`, `obj["state_dict"]`, or `obj` itself."""
  if not isinstance(obj, Mapping):
    raise CheckpointReadError(f"holds a {type(obj).__name__}, not a state dict")
  for key in ("model", "state_dict"):
    if isinstance(obj.get(key), Mapping):
      obj = obj[key]
      break
  for name, value in obj.items():
    if not isinstance(name, str) or not isinstance(value, _TensorRef):
      raise CheckpointReadError(
          f"entry {name!r} is a {type(value).__name__}, not a tensor; top-level keys "
          f"are {list(obj)[:8]} (expected a state dict, or a dict with 'model'/'state_dict')")
  return dict(obj)


# --- Tensors from storages -------------------------------------------------------------------


def _materialize(ref: _TensorRef, raw: bytes, byteorder: str, name: str) -> np.ndarray:
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
