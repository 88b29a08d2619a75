"""Weights-file members are size-checked before they are read (zip bombs stay small)."""

from __future__ import annotations

import pathlib
import tracemalloc
import zipfile

import pytest

from lvm_jax.convert import readers



def _with_member(pth, tmp_path, pick, size: int) -> pathlib.Path:
  """tiny_state.pth with the member chosen by `pick(names)` replaced by `size` zero bytes."""
  out = tmp_path / "bomb.pth"
  with zipfile.ZipFile(pth) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
    victim = pick(src.namelist())
    for name in src.namelist():
      if name == victim:
        with dst.open(name, "w") as f:
          block = bytes(1 << 20)
          for _ in range(size >> 20):
            f.write(block)
      else:
        dst.writestr(name, src.read(name))
  return out


@pytest.mark.parametrize("member", ["data.pkl", "storage"])
def test_a_member_that_expands_too_far_is_refused_before_it_is_read(fixtures_dir, tmp_path,
                                                                    monkeypatch, member):
  monkeypatch.setattr(readers, "MAX_PICKLE_BYTES", 4 << 20)
  if member == "data.pkl":
    pick = lambda names: next(n for n in names if n.endswith("/data.pkl"))  # noqa: E731
  else:
    pick = lambda names: sorted(n for n in names if "/data/" in n)[0]  # noqa: E731
  bomb = _with_member(fixtures_dir / "tiny_state.pth", tmp_path, pick, 48 << 20)
  assert bomb.stat().st_size < 1 << 20  # small on disk
  tracemalloc.start()
  with pytest.raises(readers.CheckpointReadError, match=r"bomb.pth: .*expands to 50331648 bytes"):
    readers.load_torch_checkpoint(bomb)
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  assert peak < 8 << 20


def test_an_intact_file_still_reads(fixtures_dir):
  assert readers.load_torch_checkpoint(fixtures_dir / "tiny_state.pth")
