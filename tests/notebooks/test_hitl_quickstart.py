"""notebooks/hitl_quickstart.ipynb: committed without outputs, and runs top to bottom.

The run builds its own small export (a simulated survey embedded by a random `tiny` encoder)
in a temporary folder, with settings passed through the notebook's environment variables.
"""

from __future__ import annotations


import pytest

N, ROUNDS, PER_ROUND = 96, 3, 8


def _read(repo_root):
  import nbformat
  return nbformat.read(repo_root / "notebooks" / "hitl_quickstart.ipynb", as_version=4)


def test_committed_notebook_has_no_outputs(repo_root):
  nb = _read(repo_root)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(c.outputs == [] and c.execution_count is None for c in code)
  assert "parameters" in code[0].metadata.get("tags", [])


@pytest.mark.timeout(420)
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch, repo_root):
  from nbclient import NotebookClient
  monkeypatch.setenv("LVM_HITL_WORKDIR", str(tmp_path / "work"))
  monkeypatch.setenv("LVM_HITL_N", str(N))
  monkeypatch.setenv("LVM_HITL_ROUNDS", str(ROUNDS))
  monkeypatch.setenv("LVM_HITL_PER_ROUND", str(PER_ROUND))
  monkeypatch.delenv("LVM_HITL_EXPORT", raising=False)
  monkeypatch.delenv("XLA_FLAGS", raising=False)  # one CPU device, not the suite's eight fake ones
  nb = _read(repo_root)
  NotebookClient(nb, timeout=300, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) >= 1 + 3 + 1  # prompts, three round grids, the plots
  text = "".join(o.get("text", "") for o in outputs)
  assert f"{N} galaxies" in text and "final AUPR" in text
  from astropy.table import Table
  labels = Table.read(tmp_path / "work" / "labels.fits")
  assert len(labels) == 6 + ROUNDS * PER_ROUND
  assert set(labels["label"]) <= {0, 1} and labels.meta["ALPHA"] == 0.5
