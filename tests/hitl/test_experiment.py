"""The HITL experiment protocol on a small planted-class catalogue (no simulation, no model)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_jax.hitl import experiment

ROUNDS = 2


@pytest.fixture(scope="module")
def result(tmp_path_factory):
  rng = np.random.default_rng(5)
  truth = rng.random(800) < 0.08                      # a planted class of ~8%
  x = rng.normal(0.0, 1.0, (800, 32)).astype(np.float32)
  x[truth, :4] += 2.5
  session = dict(hidden=64, fast_dims=16, steps=30)  # tests/hitl/conftest.py's small model
  protocol = experiment.Protocol(rounds=ROUNDS, report_rounds=(0, 1, ROUNDS),
                                 balanced_baseline=6, random_baseline=120, session=session)
  methods = experiment.default_methods()
  rows = experiment.run_target(x, truth, seeds=[0], methods=methods, protocol=protocol)
  out = tmp_path_factory.mktemp("experiment")
  return x, truth, methods, rows, out


def test_every_method_and_stage_reported_with_equal_budgets(result):
  _, _, methods, rows, _ = result
  summary = experiment.summarise(rows, report_rounds=(0, 1, ROUNDS))
  names = [m.name for m in methods]
  assert names == ["paper a=0.1", "paper a=0.5", "paper a=0.9", "boundary", "similar", "random"]
  for r in (0, 1, ROUNDS):
    stage = [e for e in summary if e["kind"] == "hitl" and e["round"] == r]
    assert [e["method"] for e in stage] == names
    assert {e["labels"] for e in stage} == {10 + 10 * r}   # the same label budget for all
  baselines = {e["method"]: e["labels"] for e in summary if e["kind"] == "baseline"}
  assert baselines == {"MLP 6+6": 12, "MLP 120 random": 120}
  table = experiment.markdown_table(summary)
  assert table.count("\n") == 2 + len(summary)
  assert "paper a=0.9 | 1 round | 20 |" in table


def test_prompt_stage_is_identical_across_methods(result):
  """All methods start from the same prompts and initialisation: the same first model."""
  _, _, _, rows, _ = result
  first = [r for r in rows if r["kind"] == "hitl" and r["round"] == 0]
  assert len({round(r["aupr"], 10) for r in first}) == 1
  assert {r["positives_found"] for r in first} == {5}


def test_recommendations_find_more_positives_than_random(result):
  """Exploiting the top scores labels many more true positives than random sampling (8%)."""
  _, truth, _, rows, _ = result
  final = {r["method"]: r for r in rows if r["kind"] == "hitl" and r["round"] == ROUNDS}
  found_random = final["random"]["positives_found"] - 5
  found_paper = final["paper a=0.5"]["positives_found"] - 5
  assert found_paper >= 8 and found_paper > found_random + 4
  curve = next(r["discovery"] for r in rows if r["method"] == "paper a=0.5" and r["round"] == 0)
  assert len(curve) == 10 + 10 * ROUNDS and curve[-1] == final["paper a=0.5"]["positives_found"]
  assert final["paper a=0.5"]["aupr"] > truth.mean() + 0.3   # far above a random ranking


def test_plot_and_evaluate(result):
  _, truth, _, rows, out = result
  path = experiment.plot_target(rows, "planted", out / "planted.png")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  perfect = experiment.evaluate(truth, truth.astype(np.float32), np.array([0, 1]))
  assert perfect["aupr"] == 1.0 and perfect["purity"] == 1.0 and perfect["completeness"] == 1.0
  assert perfect["aupr_unlabelled"] == 1.0 and perfect["labels"] == 2


def test_prompts_need_enough_positives():
  truth = np.zeros(50, bool)
  truth[:3] = True
  with pytest.raises(ValueError, match="3 positives"):
    experiment.draw_prompts(truth, 0, 5, 5)


def test_bad_export_is_named(tmp_path):
  x = np.ones((4, 3), np.float32)
  x[2, 1] = np.nan
  emb = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 3)
  table = pa.table({"id": ["a", "b", "c", "d"], "source_file": ["f.h5"] * 4,
                    "source_index": np.arange(4), "embedding": emb,
                    "truth_class_id": np.array([0, 6, 3, 6], np.int16)})
  pq.write_table(table, tmp_path / "part-00000.parquet")
  with pytest.raises(ValueError, match=r"row 2 \(id c.*f\.h5.*2"):
    experiment.load_survey_embeddings(tmp_path)
  pq.write_table(table.drop(["truth_class_id"]), tmp_path / "part-00000.parquet")
  with pytest.raises(ValueError, match="truth/class_id"):
    experiment.load_survey_embeddings(tmp_path)


def test_fast_model_starts_and_stays_nested_in_the_exact_model():
  """The fast input's first k principal components start from the exact model's first k
  kernel rows, so on embeddings whose tail components carry little variance both train alike."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from lvm_jax.hitl import model as model_lib  # pylint: disable=g-import-not-at-top
  from lvm_jax.hitl.features import fit_feature_space  # pylint: disable=g-import-not-at-top
  from lvm_jax.hitl.metrics import average_precision  # pylint: disable=g-import-not-at-top
  key = jax.random.key(3)
  wide = model_lib.hidden_kernel(key, 12, 32, 12.0)
  np.testing.assert_array_equal(model_lib.hidden_kernel(key, 5, 32, 12.0), wide[:5])
  assert abs(float(jnp.std(wide)) * np.sqrt(12.0) - 1.0) < 0.15   # LeCun's variance
  rng = np.random.default_rng(0)
  truth = rng.random(1000) < 0.1
  z = rng.normal(0.0, 1.0, (1000, 6))
  z[truth, :2] += 1.5
  x = (z @ rng.normal(0.0, 1.0, (6, 48)) + rng.normal(0.0, 0.05, (1000, 48))).astype(np.float32)
  rows = np.r_[np.flatnonzero(truth)[:8], np.flatnonzero(~truth)[:24]]
  scores = {}
  for name, dims in (("fast", 8), ("exact", None)):
    inputs = fit_feature_space(x, dims=dims).transform(x)
    params = model_lib.train(inputs, rows, truth[rows].astype(np.float32), key, hidden=64,
                             steps=40)
    scores[name] = model_lib.BlockScorer(inputs, jnp.float32, threads=1)(params)
  assert np.corrcoef(scores["fast"], scores["exact"])[0, 1] > 0.999
  assert abs(average_precision(truth, scores["fast"]) -
             average_precision(truth, scores["exact"])) < 0.005
