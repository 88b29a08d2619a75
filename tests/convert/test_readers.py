"""Tests for lvm_jax.convert.readers: torch/npz/safetensors state dicts, read without torch.

The .pth fixtures come from tests/fixtures/make_pth_fixtures.py (needs torch to regenerate);
tiny_state_expected.npz holds the same tensors as torch saw them (bfloat16 as float32).
"""

from __future__ import annotations

import pathlib
import pickle
import struct
import zipfile

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from lvm_jax.convert import readers

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
  with np.load(FIXTURES / "tiny_state_expected.npz") as z:
    return {k: z[k] for k in z.files}


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
  assert list(got) == list(want)
  for name, w in want.items():
    g = got[name]
    assert g.shape == w.shape, name
    assert g.flags.c_contiguous, name
    if g.dtype == ml_dtypes.bfloat16:
      g = g.astype(np.float32)  # exact: float32 holds every bfloat16
    assert g.dtype == w.dtype, name
    np.testing.assert_array_equal(g, w, err_msg=name)


# --- torch files -----------------------------------------------------------------------------


@pytest.mark.parametrize("filename, prefix", [
    ("tiny_state.pth", "swin_unet."),              # {"model": sd, "epoch": 3, "optimizer": ...}
    ("tiny_state_dataparallel.pth", "module."),    # bare state dict
    ("tiny_state_legacy.pth", ""),                 # pre-1.6 non-zip format
])
def test_torch_checkpoint_matches_torch_values(filename, prefix, expected):
  raw = readers.load_torch_checkpoint(FIXTURES / filename)
  assert type(raw) is dict
  assert all(k.startswith(prefix) for k in raw)
  _assert_same(readers.strip_prefixes(raw), expected)


def test_torch_dtypes_are_kept():
  sd = readers.strip_prefixes(readers.load_torch_checkpoint(FIXTURES / "tiny_state.pth"))
  assert sd["half.weight"].dtype == np.float16
  assert sd["bf16.weight"].dtype == ml_dtypes.bfloat16
  assert sd["relative_position_index"].dtype == np.int64
  assert sd["uint16.buffer"].dtype == np.uint16
  assert sd["scalar.buffer"].shape == ()
  assert sd["prelu.weight"].shape == (1,)


def test_non_contiguous_views_are_gathered(expected):
  sd = readers.strip_prefixes(readers.load_torch_checkpoint(FIXTURES / "tiny_state.pth"))
  # Both views share one storage: the transpose of a (4, 6) matrix, and rows 1: / columns ::2.
  base = expected["transposed.weight"].T
  np.testing.assert_array_equal(sd["transposed.weight"], base.T)
  np.testing.assert_array_equal(sd["sliced.weight"], base[1:, ::2])


def test_strip_prefixes_handles_any_combination():
  sd = {"module.swin_unet.a": 1, "swin_unet.module.b": 2, "module.c": 3, "d.module.e": 4}
  assert readers.strip_prefixes(sd) == {"a": 1, "b": 2, "c": 3, "d.module.e": 4}
  assert list(readers.strip_prefixes(sd)) == ["a", "b", "c", "d.module.e"]
  with pytest.raises(ValueError, match="'a'"):
    readers.strip_prefixes({"module.a": 1, "a": 2})


@pytest.mark.parametrize("filename", ["tiny_state.pth", "tiny_state_legacy.pth"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_pth_names_the_file(tmp_path, filename, keep):
  data = (FIXTURES / filename).read_bytes()
  bad = tmp_path / "cut.pth"
  bad.write_bytes(data[: int(len(data) * keep)])
  with pytest.raises(readers.CheckpointReadError, match="cut.pth"):
    readers.load_torch_checkpoint(bad)


def test_corrupt_storage_names_the_file(tmp_path):
  """A zip whose directory is intact but whose tensor bytes are short."""
  src = FIXTURES / "tiny_state_dataparallel.pth"
  bad = tmp_path / "short.pth"
  with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
    for info in zin.infolist():
      data = zin.read(info)
      zout.writestr(info, data[:3] if "/data/" in info.filename else data)
  with pytest.raises(readers.CheckpointReadError, match="short.pth"):
    readers.load_torch_checkpoint(bad)


def test_unknown_extension_names_the_file(tmp_path):
  path = tmp_path / "weights.h5"
  path.write_bytes(b"")
  with pytest.raises(ValueError, match="weights.h5"):
    readers.load_torch_checkpoint(path)


def test_non_torch_bytes_ask_for_zip_format(tmp_path):
  path = tmp_path / "old.pth"
  path.write_bytes(b"not a checkpoint at all")
  with pytest.raises(readers.CheckpointReadError, match=r"old.pth.*torch>=1.6"):
    readers.load_torch_checkpoint(path)


# --- hand-built pickles: malicious globals, out-of-range views -------------------------------


def _global(module: str, name: str) -> bytes:
  return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
  b = s.encode()
  return b"X" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
  return b"J" + struct.pack("<i", i)


def _tuple(*items: bytes) -> bytes:
  return b"(" + b"".join(items) + b"t"


def _call(fn: bytes, *args: bytes) -> bytes:
  return fn + _tuple(*args) + b"R"


def _tensor(offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> bytes:
  """The opcodes torch emits for a float32 tensor over storage '0'."""
  storage = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str("0"), _str("cpu"),
                   _int(numel)) + b"Q"
  return _call(_global("torch._utils", "_rebuild_tensor_v2"), storage, _int(offset),
               _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89", b"}")


def _dict(**entries: bytes) -> bytes:
  return b"}(" + b"".join(_str(k) + v for k, v in entries.items()) + b"u"


def _write_pth(path: pathlib.Path, pickled: bytes, numel: int = 4,
               byteorder: str = "little") -> pathlib.Path:
  """A zip laid out as torch.save lays it out, around `pickled`; storage '0' is arange(numel)."""
  body = b"\x80\x02" + pickled + b"." if not pickled.startswith(b"\x80") else pickled
  storage = np.arange(numel, dtype="<f4" if byteorder == "little" else ">f4")
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/data.pkl", body)
    zf.writestr("archive/byteorder", byteorder)
    zf.writestr("archive/data/0", storage.tobytes())
    zf.writestr("archive/version", "3\n")
  return path


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_hand_built_pickle_reads(tmp_path, byteorder):
  path = _write_pth(tmp_path / "ok.pth", _dict(model=_dict(w=_tensor(1, (3,), (1,), 4))),
                    byteorder=byteorder)
  got = readers.load_torch_checkpoint(path)["w"]
  assert got.dtype == np.float32 and got.dtype.isnative
  np.testing.assert_array_equal(got, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("offset, size, stride", [
    (2, (3,), (1,)),       # runs past the end
    (0, (2, 2), (3, 1)),   # last element at 4
    (-1, (2,), (1,)),      # before the start
    (0, (2,), (-1,)),      # negative stride
    (0, (-2,), (1,)),      # negative size
])
def test_views_outside_their_storage_are_refused(tmp_path, offset, size, stride):
  path = _write_pth(tmp_path / "oob.pth", _dict(w=_tensor(offset, size, stride, 4)))
  with pytest.raises(readers.CheckpointReadError, match="oob.pth"):
    readers.load_torch_checkpoint(path)


@pytest.mark.parametrize("module, name, make_payload", [
    ("os", "system", lambda p: f"touch {p}"),
    ("posix", "system", lambda p: f"touch {p}"),
    ("builtins", "eval", lambda p: f"open({str(p)!r}, 'w').close()"),
    ("subprocess", "call", lambda p: f"touch {p}"),
])
def test_malicious_global_is_refused_without_running(tmp_path, module, name, make_payload):
  marker = tmp_path / "pwned"
  evil = _call(_global(module, name), _str(make_payload(marker)))
  # The payload sits beside a valid state dict, where a loader might think it harmless.
  path = _write_pth(tmp_path / "evil.pth",
                    _dict(model=_dict(w=_tensor(0, (4,), (1,), 4)), epoch=evil))
  with pytest.raises(pickle.UnpicklingError, match=rf"evil.pth.*'{module}\.{name}'"):
    readers.load_torch_checkpoint(path)
  assert not marker.exists()


class _Evil:
  """What an attacker pickles: unpickling it would run `os.system`."""

  def __init__(self, marker: pathlib.Path):
    self.marker = marker

  def __reduce__(self):
    import os  # pylint: disable=import-outside-toplevel
    return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_from_pickle_dumps_is_refused(tmp_path):
  marker = tmp_path / "pwned"
  path = _write_pth(tmp_path / "evil.pth", pickle.dumps({"model": _Evil(marker)}, protocol=2))
  with pytest.raises(pickle.UnpicklingError, match="system"):
    readers.load_torch_checkpoint(path)
  assert not marker.exists()


def test_opaque_globals_keep_extras_inert(tmp_path):
  marker = tmp_path / "pwned"
  evil = _call(_global("os", "system"), _str(f"touch {marker}"))
  ok = _write_pth(tmp_path / "extra.pth",
                  _dict(model=_dict(w=_tensor(0, (4,), (1,), 4)), args=evil))
  sd = readers.load_torch_checkpoint(ok, opaque_globals=True)
  np.testing.assert_array_equal(sd["w"], np.arange(4, dtype=np.float32))
  assert not marker.exists()
  inside = _write_pth(tmp_path / "inside.pth", _dict(model=_dict(w=evil)))
  with pytest.raises(readers.CheckpointReadError, match="'w'"):
    readers.load_torch_checkpoint(inside, opaque_globals=True)
  assert not marker.exists()


def test_non_state_dict_is_refused(tmp_path):
  path = _write_pth(tmp_path / "list.pth", b"]" + _int(1) + b"a")
  with pytest.raises(readers.CheckpointReadError, match="list.pth"):
    readers.load_torch_checkpoint(path)


# --- npz and safetensors ---------------------------------------------------------------------


def test_reference_npz_state_dict(reference_dir):
  sd = readers.load_torch_checkpoint(reference_dir / "sunet_tiny64.npz")
  lines = (reference_dir / "sunet_tiny64_keys.txt").read_text().splitlines()
  names = [ln.split("\t")[0] for ln in lines if ln.strip()]
  shapes = [tuple(int(d) for d in ln.split("\t")[1].strip("[]").split(",") if d.strip())
            for ln in lines if ln.strip()]
  assert list(sd) == names
  assert [sd[n].shape for n in names] == shapes
  assert all(v.dtype == np.float32 or v.dtype == np.int64 for v in sd.values())


def test_plain_npz_keeps_all_names(tmp_path):
  want = {"b": np.ones((2, 3), np.float32), "a": np.arange(3)}
  np.savez(tmp_path / "w.npz", **want)
  got = readers.load_torch_checkpoint(tmp_path / "w.npz")
  assert list(got) == ["b", "a"]
  for k, v in want.items():
    np.testing.assert_array_equal(got[k], v)


def test_safetensors_round_trip(tmp_path, expected):
  want = {k: np.ascontiguousarray(v) for k, v in expected.items()}  # save_file needs C order
  save_file(want, str(tmp_path / "w.safetensors"))
  got = readers.load_torch_checkpoint(tmp_path / "w.safetensors")
  assert set(got) == set(want)
  for k, v in want.items():
    assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
    np.testing.assert_array_equal(got[k], v, err_msg=k)


def test_truncated_safetensors_names_the_file(tmp_path, expected):
  save_file(dict(expected), str(tmp_path / "w.safetensors"))
  data = (tmp_path / "w.safetensors").read_bytes()
  (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
  with pytest.raises(readers.CheckpointReadError, match="cut.safetensors"):
    readers.load_torch_checkpoint(tmp_path / "cut.safetensors")
