"""Missing optional extras: one line naming the extra to install, exit status 2, before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lvm_jax import cli, extras


def _block(monkeypatch, *modules):
  """Makes `import m` fail (and find_spec answer None) for each module, as if not installed."""
  for m in modules:
    monkeypatch.setitem(sys.modules, m, None)


def test_every_extra_module_is_installed_in_the_dev_environment():
  # `dev` installs every extra but gpu and bench: a misspelt module name would show up here.
  assert extras.missing(*extras.MODULES) == {}


def test_message_names_the_extras_and_the_pip_command(monkeypatch):
  _block(monkeypatch, "galsim", "panel")
  with pytest.raises(extras.MissingExtraError) as info:
    extras.require("sim", "app", command="demo")
  assert str(info.value) == ("lvm-jax demo needs the 'sim' and 'app' extras (galsim, panel not "
                             "installed): pip install 'lvm-jax[sim,app]'")
  extras.require("data", "ann", command="demo")  # the others are there
  _block(monkeypatch, "h5py", "pyarrow", "cv2", "lsdb")
  assert extras.message("demo", extras.missing("sim", "catalogue")) == (
      "lvm-jax demo needs the 'sim' and 'catalogue' extras (galsim, lsdb, h5py, pyarrow and 1 "
      "more not installed): pip install 'lvm-jax[sim,catalogue]'")


def test_an_included_extra_counts(monkeypatch):
  _block(monkeypatch, "h5py")
  assert extras.missing("sim", "app", "ann") == {"sim": ["h5py"], "app": ["h5py"]}
  assert extras.extra_for("h5py") == "data" and extras.extra_for("lsdb.core") == "catalogue"
  assert extras.extra_for("numpy") is None
  error = extras.from_import_error(ModuleNotFoundError("no", name="galsim.lensing"), "x")
  assert "pip install 'lvm-jax[sim]'" in str(error)
  assert extras.from_import_error(ModuleNotFoundError("no", name="numpyy"), "x") is None


@pytest.mark.parametrize("argv, blocked, extra", [
    (["simulate", "--n", "2", "--out", "{tmp}/sim"], "galsim", "sim"),
    (["hitl", "--embeddings", "{tmp}/e.parquet"], "panel", "app"),
    (["export", "--checkpoint", "{tmp}/c", "--data", "{tmp}/d", "--out", "{tmp}/o"], "pyarrow",
     "data"),
    (["search", "--embeddings", "{tmp}/o", "--id", "a"], "h5py", "data"),
    (["export-hats", "{tmp}/o", "{tmp}/h"], "hats_import", "catalogue"),
    (["crossmatch", "--embeddings", "{tmp}/o", "--catalogue", "{tmp}/c.csv", "--out",
      "{tmp}/m.csv"], "lsdb", "catalogue"),
    (["reconstruct", "--checkpoint", "{tmp}/c", "{tmp}/a.fits"], "astropy", "data"),
    (["convert-torch", "{tmp}/w.pth", "{tmp}/out"], "cv2", "data"),
])
def test_commands_check_their_extra_first(monkeypatch, tmp_path, capsys, argv, blocked, extra):
  _block(monkeypatch, blocked)
  argv = [a.format(tmp=tmp_path) for a in argv]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err == (f"lvm-jax {argv[0]}: error: lvm-jax {argv[0]} needs the '{extra}' extra "
                 f"({blocked} not installed): pip install 'lvm-jax[{extra}]'\n")
  assert list(tmp_path.iterdir()) == []  # nothing was written


def test_cli_loads_and_answers_without_any_extra(tmp_path):
  """With every extra's modules missing, `lvm-jax` still parses and says what to install."""
  blocked = sorted({m for modules in extras.MODULES.values() for m in modules})
  code = (f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
          "from lvm_jax import cli\n"
          f"sys.exit(cli.main(['simulate', '--n', '2', '--out', {str(tmp_path / 'sim')!r}]))\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
  assert out.returncode == 2, out.stderr
  assert out.stderr.count("\n") == 1 and "pip install 'lvm-jax[sim]'" in out.stderr
  assert out.stderr.startswith("lvm-jax simulate: error: lvm-jax simulate needs the 'sim' extra (")
