"""Every user mistake on the command line: one line `lvm-jax COMMAND: error: ...`, exit 2."""

from __future__ import annotations


import pytest

from lvm_jax import cli
from lvm_jax.errors import ConfigError



def _train(tmp_path, *extra, config="pretrain:tiny"):
  return ["train", "--config", config, "--workdir", str(tmp_path / "w"), *extra]


def _one_error_line(capsys, command: str, *needles: str) -> str:
  err = capsys.readouterr().err.strip()
  assert "Traceback" not in err
  line = err.splitlines()[-1]
  assert line.startswith(f"lvm-jax {command}: error: "), err
  for needle in needles:
    assert needle in line, line
  return line


@pytest.mark.parametrize("extra, needles", [
    (["--config.batch_size=abc"], ["batch_size=abc", "expected int"]),
    (["--config.batch_size=1.5"], ["batch_size=1.5", "expected int"]),
    (["--config.optimizer.nope=1"], ["unknown config key 'optimizer.nope'"]),
    (["--config.batch_size=0"], ["batch_size=0", ">= 1"]),
    (["--config.batch_size=-4"], ["batch_size=-4"]),
    (["--config.optimizer.lr=-0.001"], ["optimizer.lr=-0.001", "> 0"]),
    (["--config.num_steps=-3"], ["num_steps=-3"]),
    (["--config.checkpoint.every_steps=0"], ["checkpoint.every_steps=0"]),
])
def test_bad_config_values_are_one_line_errors(tmp_path, capsys, extra, needles):
  assert cli.main(_train(tmp_path, *extra)) == 2
  _one_error_line(capsys, "train", *needles)
  assert not (tmp_path / "w").exists()  # refused before any work


def test_unknown_preset_and_missing_config_file(tmp_path, capsys):
  assert cli.main(_train(tmp_path, config="pretrain:huge")) == 2
  _one_error_line(capsys, "train", "unknown variant 'huge'")
  assert cli.main(_train(tmp_path, config=str(tmp_path / "none.py"))) == 2
  _one_error_line(capsys, "train", "none.py not found")


def test_override_without_a_value(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_:
    cli.main(_train(tmp_path, "--config.batch_size"))
  assert exit_.value.code == 2
  _one_error_line(capsys, "train", "--config.batch_size has no value")


def test_simulate_refuses_a_negative_count(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_:
    cli.main(["simulate", "--n", "-5", "--out", str(tmp_path / "s")])
  assert exit_.value.code == 2
  _one_error_line(capsys, "simulate", "--n", "-5")
  assert not (tmp_path / "s").exists()


def test_missing_data_or_checkpoint_files(tmp_path, capsys, micro_checkpoint):
  assert cli.main(["export", "--checkpoint", str(tmp_path / "none"), "--data", str(tmp_path),
                   "--out", str(tmp_path / "o")]) == 2
  _one_error_line(capsys, "export", "no checkpoint", "none")
  assert cli.main(["export", "--checkpoint", str(micro_checkpoint), "--data",
                   str(tmp_path / "nodata"), "--out", str(tmp_path / "o")]) == 2
  _one_error_line(capsys, "export", "nodata")


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
  with pytest.raises(ConfigError):
    cli.main(["--debug", *_train(tmp_path, "--config.batch_size=abc")])
  monkeypatch.setenv("LVM_JAX_DEBUG", "1")
  with pytest.raises(ConfigError):
    cli.main(_train(tmp_path, "--config.batch_size=abc"))
