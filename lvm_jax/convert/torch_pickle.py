"""The restricted unpickler of PyTorch weight files: no torch, no code.

A `torch.save` pickle is parsed with only the globals a state dict needs (tensor rebuild
functions, storage types, dtypes, `OrderedDict`); any other global, such as `os.system` or
`builtins.eval`, raises `RefusedGlobalError` naming it before anything runs, or (with
`opaque_globals`) becomes an inert placeholder. Tensors come back as `TensorRef`s, strided views
of `Storage`s (named by persistent ids) that `lvm_jax.convert.readers` reads later.
"""

from __future__ import annotations

import collections
import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from lvm_jax.errors import UserError

RESAVE_HINT = "re-save with torch>=1.6 (zip format)"


class RefusedGlobalError(UserError, pickle.UnpicklingError):
  """The pickle names a global outside the allow-list (it was not imported or called)."""


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
class Storage:
  """A storage named by a persistent id: `numel` elements of `dtype` under `key`."""
  key: str
  dtype: np.dtype
  numel: int


@dataclasses.dataclass(frozen=True)
class TensorRef:
  """A tensor view of a storage, in elements of `dtype`; read later by `_materialize`."""
  storage: Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]
  dtype: np.dtype


def _check_view(storage: Any, offset: Any, size: Any, stride: Any) -> None:
  if not isinstance(storage, Storage):
    raise pickle.UnpicklingError(f"tensor built from {type(storage).__name__}, not a storage")
  ints = [offset, *size, *stride] if isinstance(size, tuple) and isinstance(stride, tuple) else []
  if (not ints or len(size) != len(stride) or not all(type(i) is int for i in ints)
      or min(size, default=0) < 0):
    raise pickle.UnpicklingError(f"bad tensor view: offset={offset!r} size={size!r}")


def _rebuild_tensor(storage, storage_offset, size, stride) -> TensorRef:
  _check_view(storage, storage_offset, size, stride)
  return TensorRef(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> TensorRef:
  del requires_grad, backward_hooks, metadata
  return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None) -> TensorRef:
  """Newer dtypes: an untyped (byte) storage viewed as `dtype`."""
  del requires_grad, backward_hooks, metadata
  _check_view(storage, storage_offset, size, stride)
  if not isinstance(dtype, _DType):
    raise pickle.UnpicklingError(f"_rebuild_tensor_v3 given dtype {dtype!r}")
  return TensorRef(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
  del requires_grad, backward_hooks, state
  if not isinstance(data, TensorRef):
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


class RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only `_allowed_global`s; storages go through `load_storage`."""

  def __init__(self, file, load_storage: Callable[[tuple], Storage] | None,
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


def storage_from_pid(pid: Any, legacy: bool) -> Storage:
  """('storage', type, key, location, numel[, view_metadata]) -> Storage."""
  if not (isinstance(pid, tuple) and len(pid) == (6 if legacy else 5) and pid[0] == "storage"):
    raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
  _, stype, key, _, numel = pid[:5]
  if not isinstance(stype, _StorageType) or type(numel) is not int or numel < 0:
    raise pickle.UnpicklingError(f"bad storage record {pid!r}")
  if legacy and pid[5] is not None:
    raise pickle.UnpicklingError(f"storage views are not supported; {RESAVE_HINT}")
  return Storage(str(key), stype.dtype, numel)
