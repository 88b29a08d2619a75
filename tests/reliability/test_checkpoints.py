"""Checkpoint integrity: digests verified on restore and by `lvm-jax checkpoint verify`."""

from __future__ import annotations

import logging

import jax
import numpy as np
import pytest

from lvm_jax import checkpoint, cli
from lvm_jax.errors import CheckpointError


def _same(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("item", ["params", "meta", "config"])
def test_one_flipped_byte_in_any_item_is_refused(ckpt_copy, micro, item, capsys, tools):
  tools.flip_byte(tools.largest_file(ckpt_copy / "2" / item))
  with pytest.raises(CheckpointError, match=rf"{ckpt_copy} step 2, item '{item}'.*SHA-256"):
    checkpoint.restore(ckpt_copy, 2)
  with pytest.raises(CheckpointError, match=f"item '{item}'"):
    checkpoint.restore(ckpt_copy, fallback=False)
  assert [p[0] for p in checkpoint.verify(ckpt_copy)[2]] == [item]
  assert cli.main(["checkpoint", "verify", str(ckpt_copy)]) == 1
  out = capsys.readouterr().out
  assert f"step 2: DAMAGED item {item}" in out and "step 1: ok" in out


def test_truncated_item_names_checkpoint_item_and_remedy(ckpt_copy, tools):
  target = tools.largest_file(ckpt_copy / "2" / "params")
  target.write_bytes(target.read_bytes()[:-7])
  with pytest.raises(CheckpointError, match=r"item 'params'.*bytes.*truncated.*earlier step"):
    checkpoint.restore(ckpt_copy, 2)


def test_missing_item_is_one_clear_error(ckpt_copy):
  import shutil
  shutil.rmtree(ckpt_copy / "2" / "meta")
  with pytest.raises(CheckpointError, match=r"step 2.*item 'meta'.*missing"):
    checkpoint.read_json(ckpt_copy, "meta", 2)


def test_garbage_json_item_without_digests_names_the_item(ckpt_copy):
  (ckpt_copy / "2" / checkpoint.DIGEST_FILE).unlink()  # as written before digests existed
  (ckpt_copy / "2" / "meta" / "metadata").write_text("{not json")
  with pytest.raises(CheckpointError, match=r"step 2, item 'meta' cannot be read"):
    checkpoint.read_json(ckpt_copy, "meta", 2)


def test_checkpoint_without_digests_loads_with_a_warning(ckpt_copy, micro, caplog):
  for step in (1, 2):
    (ckpt_copy / str(step) / checkpoint.DIGEST_FILE).unlink()
  with caplog.at_level(logging.WARNING, logger="lvm_jax.checkpoint"):
    restored = checkpoint.restore(ckpt_copy)
  assert restored["step"] == 2 and "no digests" in caplog.text
  _same(restored["params"], micro[1])
  assert cli.main(["checkpoint", "verify", str(ckpt_copy)]) == 0


def test_truncated_newest_step_falls_back_to_the_newest_intact(ckpt_copy, micro, caplog, tools):
  target = tools.largest_file(ckpt_copy / "2" / "params")
  target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
  with caplog.at_level(logging.WARNING, logger="lvm_jax.checkpoint"):
    restored = checkpoint.restore(ckpt_copy)
  assert restored["step"] == 1 and restored["skipped"] == [2]
  assert "step 2" in caplog.text and "newest intact" in caplog.text
  _same(restored["params"], micro[1])
  assert checkpoint.resolve_step(ckpt_copy) == 1
  with pytest.raises(CheckpointError):
    checkpoint.resolve_step(ckpt_copy, fallback=False)
  moved = checkpoint.set_aside(ckpt_copy, 2)  # what training does: nothing is deleted
  assert moved.is_dir() and checkpoint.steps(ckpt_copy) == [1]


def test_save_on_a_full_disk_is_one_error_naming_the_checkpoint(tmp_path, micro, monkeypatch):
  import errno

  import orbax.checkpoint as ocp

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(ocp.CheckpointManager, "save", full)
  with pytest.raises(CheckpointError, match=rf"cannot save checkpoint {tmp_path}.*step 5.*No "
                                            r"space.*free space"):
    checkpoint.save(tmp_path, 5, params=micro[1], config={"model": {}})
