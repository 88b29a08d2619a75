"""The HITL experiment of Fu et al. (2024) with an oracle labeller (truth labels).

For one target class, each seed draws prompts (known positives and random negatives, as the
paper's user brings them) and runs `Session` for a number of rounds with each strategy, the
oracle labelling every recommended object; baselines train the same MLP, in the same feature
space, on a class-balanced 15 + 15 and on 1,000 random labels. Metrics are measured on the
scores of all N objects (labelled ones included, scored by the model) and, for AUPR, also on
the unlabelled objects alone:

    from lvm_jax.hitl import experiment
    x, cat = experiment.load_survey_embeddings("emb/")        # (N, D) float32, columns
    truth = experiment.target_truth(cat, "face_on_spiral")
    rows = experiment.run_target(x, truth, seeds=range(5), methods=experiment.default_methods())
    print(experiment.markdown_table(experiment.summarise(rows)))

`experiments/hitl_experiment.py` is the command line: it simulates the survey, exports its
embeddings with a pretrained checkpoint, runs both targets and writes the table and plots.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from typing import Any, Iterable, Sequence

import numpy as np

from lvm_jax import provenance as provenance_lib
from lvm_jax.hitl import metrics as metrics_lib
from lvm_jax.hitl.session import Session

SURVEY_DONE = "survey.json"
TRUTH_COLUMN = "truth_class_id"  # `truth/class_id` carried through `lvm-jax export`


# -- the simulated survey and its embeddings ------------------------------------------------

def survey_dir(workdir, n: int, seed: int, lens_fraction: float,
               preset: str = "faint") -> pathlib.Path:
  """The cache folder of one simulated survey under `workdir`."""
  return pathlib.Path(workdir) / f"survey_{preset}_n{n}_seed{seed}_lens{lens_fraction:g}"


def prepare_survey(workdir, n: int, seed: int = 0, lens_fraction: float = 0.001,
                   chunk: int = 5000, workers: int | None = None,
                   preset: str = "faint") -> pathlib.Path:
  """Simulates the survey (ssl HDF5 + `truth/`, `lvm_jax.sim.presets` name `preset`) once;
  later calls return the cached folder.

  A folder is reused only when its `survey.json` (written last, with provenance) exists.
  """
  from lvm_jax.sim import survey  # pylint: disable=g-import-not-at-top
  out = survey_dir(workdir, n, seed, lens_fraction, preset)
  done = out / SURVEY_DONE
  if done.exists():
    return out
  start = time.time()
  paths = survey.write_survey(out, n, seed=seed, chunk=chunk, lens_fraction=lens_fraction,
                              workers=workers, preset=preset)
  record = provenance_lib.provenance(n=n, seed=seed, lens_fraction=lens_fraction, preset=preset,
                                     files=[os.path.basename(p) for p in paths],
                                     seconds=round(time.time() - start, 1))
  done.write_text(json.dumps(record, indent=1))
  return out


def export_embeddings(checkpoint_dir, survey: os.PathLike, out: os.PathLike,
                      embedding: str = "mean", batch: int = 32) -> pathlib.Path:
  """Embeds the survey with the checkpoint (`lvm_jax.export.export_survey`), carrying the
  truth class; resumes or reuses an export made with the same settings. float32 compute and
  the fast resize (it differs from scikit-image's by < 1e-6 nanomaggies)."""
  from lvm_jax.export import ExportSettings, export_survey  # pylint: disable=g-import-not-at-top
  settings = ExportSettings(batch=batch, chunk_size=4096, embedding=embedding,
                            compute_dtype="float32", carry=("truth/class_id",), workers=2,
                            fast_resize=True)
  export_survey(checkpoint_dir, survey, out, settings, progress=False)
  return pathlib.Path(out)


def load_survey_embeddings(export_dir) -> tuple[np.ndarray, Any]:
  """(N, D) float32 embeddings and the `EmbeddingCatalogue` of an export with truth.

  Raises ValueError naming the export and the object (id, file, index) when an embedding is
  not finite, or when the export does not carry `truth/class_id`.
  """
  from lvm_jax.hitl.catalogue import load_catalogue  # pylint: disable=g-import-not-at-top
  cat = load_catalogue(os.fspath(export_dir))
  if TRUTH_COLUMN not in cat.columns:
    raise ValueError(f"{export_dir}: no column {TRUTH_COLUMN!r}; export the simulated survey "
                     "with --carry truth/class_id")
  bad = np.flatnonzero(~np.isfinite(cat.embeddings).all(axis=1))
  if len(bad):
    i = int(bad[0])
    where = {k: cat.columns[k][i] for k in ("source_file", "source_index") if k in cat.columns}
    raise ValueError(f"{export_dir}: {len(bad)} non-finite embeddings, first at row {i} "
                     f"(id {cat.ids[i]}, {where})")
  return cat.embeddings, cat


def target_truth(catalogue, target: str) -> np.ndarray:
  """(N,) bool: objects of the class named `target` (`lvm_jax.sim.classes.CLASS_NAMES`)."""
  from lvm_jax.sim.classes import CLASS_IDS  # pylint: disable=g-import-not-at-top
  if target not in CLASS_IDS:
    raise ValueError(f"unknown class {target!r}; known: {sorted(CLASS_IDS)}")
  return np.asarray(catalogue.columns[TRUTH_COLUMN]) == CLASS_IDS[target]


# -- the protocol ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Method:
  """A labelling strategy of `Session` ("paper" with its alpha, "boundary", "similar", "random")."""
  strategy: str
  alpha: float = 0.5

  @property
  def name(self) -> str:
    return f"paper a={self.alpha:g}" if self.strategy == "paper" else self.strategy


def default_methods(alphas: Sequence[float] = (0.1, 0.5, 0.9)) -> list[Method]:
  """The paper's rule at each alpha, then boundary, similar and random sampling."""
  return [Method("paper", a) for a in alphas] + [Method("boundary"), Method("similar"),
                                                  Method("random")]


@dataclasses.dataclass(frozen=True)
class Protocol:
  """Label budget of one run.

  prompts_positive / prompts_negative: the user's first labels (true positives, negatives).
  per_round, rounds: recommended objects per round and the number of rounds labelled.
  report_rounds: rounds after which the table reports (0: trained on the prompts only).
  balanced_baseline: positives = negatives of the class-balanced MLP baseline (15 + 15).
  random_baseline: random labels of the other baseline (1,000).
  threshold: score above which an object counts as selected (purity, completeness).
  session: extra `Session` arguments (hidden, fast, fast_dims, steps, learning_rate).
  """
  prompts_positive: int = 5
  prompts_negative: int = 5
  per_round: int = 10
  rounds: int = 10
  report_rounds: tuple[int, ...] = (0, 1, 10)
  balanced_baseline: int = 15
  random_baseline: int = 1000
  threshold: float = 0.5
  session: dict[str, Any] = dataclasses.field(default_factory=dict)


def draw_prompts(truth: np.ndarray, seed: int, n_pos: int, n_neg: int) -> np.ndarray:
  """Rows of `n_pos` true positives and `n_neg` true negatives drawn with `seed`."""
  rng = np.random.default_rng([seed, 7])
  pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
  if len(pos) < n_pos or len(neg) < n_neg:
    raise ValueError(f"asked for {n_pos} positive and {n_neg} negative prompts; the truth has "
                     f"{len(pos)} positives and {len(neg)} negatives")
  return np.r_[rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]


def evaluate(truth: np.ndarray, scores: np.ndarray, labelled: np.ndarray,
             threshold: float = 0.5) -> dict[str, float]:
  """Metrics of one trained model.

  Args:
    truth: (N,) bool.
    scores: (N,) probability of the positive class.
    labelled: (n,) rows labelled so far.

  Returns:
    labels, positives_found (true positives among the labelled), aupr and auc over all N
    objects, aupr_unlabelled (the N - n unlabelled objects), purity and completeness of
    score > threshold over all N.
  """
  unl = np.ones(len(truth), bool)
  unl[labelled] = False
  purity, completeness = metrics_lib.purity_completeness(truth, scores, threshold)
  return {"labels": int(len(labelled)), "positives_found": int(truth[labelled].sum()),
          "aupr": metrics_lib.average_precision(truth, scores),
          "auc": metrics_lib.roc_auc(truth, scores),
          "aupr_unlabelled": metrics_lib.average_precision(truth[unl], scores[unl]),
          "purity": purity, "completeness": completeness}


def run_hitl(embeddings: np.ndarray, truth: np.ndarray, method: Method, seed: int,
             protocol: Protocol) -> dict[str, Any]:
  """One oracle-labelled session: prompts, then `rounds` rounds of `per_round` labels.

  Returns {"stages": [metrics after each training, round 0 = prompts only, ...],
  "discovery": (n_labels,) positives found after each label, in labelling order}.
  """
  s = Session(embeddings, strategy=method.strategy, alpha=method.alpha, seed=seed,
              per_round=protocol.per_round, **protocol.session)
  rows = draw_prompts(truth, seed, protocol.prompts_positive, protocol.prompts_negative)
  s.label(rows, truth[rows].astype(int))
  labelled = list(rows)
  stages = []
  for r in range(protocol.rounds + 1):
    shown = np.asarray(s.next_round(), np.int64)
    stages.append(dict(round=r, **evaluate(truth, s.scores(), np.asarray(labelled),
                                           protocol.threshold)))
    if r < protocol.rounds:
      s.label(shown, truth[shown].astype(int))
      labelled.extend(shown.tolist())
  discovery = metrics_lib.discovery_curve(truth[labelled])
  s.close()
  return {"stages": stages, "discovery": discovery}


def run_baseline(embeddings: np.ndarray, truth: np.ndarray, rows: np.ndarray, seed: int,
                 protocol: Protocol) -> dict[str, float]:
  """The same MLP (same Session feature space and training) trained once on `rows`."""
  s = Session(embeddings, seed=seed, per_round=protocol.per_round, **protocol.session)
  s.label(rows, truth[rows].astype(int))
  s.next_round()
  out = evaluate(truth, s.scores(), rows, protocol.threshold)
  s.close()
  return out


def baseline_rows(truth: np.ndarray, seed: int, protocol: Protocol) -> dict[str, np.ndarray]:
  """{baseline name: rows}: k + k class-balanced and `random_baseline` random rows.

  k is `balanced_baseline` unless fewer than k + `prompts_positive` positives exist; then it
  leaves that many positives unlabelled (e.g. 10 + 10 for 15 lenses), so the baseline is not
  trained on every positive there is.
  """
  n_pos = int(truth.sum())
  k = max(1, min(protocol.balanced_baseline, n_pos - protocol.prompts_positive))
  rng = np.random.default_rng([seed, 11])
  n_random = min(protocol.random_baseline, len(truth))
  return {f"MLP {k}+{k}": draw_prompts(truth, seed + 1000, k, k),
          f"MLP {n_random} random": np.sort(rng.choice(len(truth), n_random, replace=False))}


def run_target(embeddings: np.ndarray, truth: np.ndarray, seeds: Iterable[int],
               methods: Sequence[Method], protocol: Protocol = Protocol(),
               log=None) -> list[dict[str, Any]]:
  """Every method and baseline for every seed: one dict per (method, seed, stage).

  HITL rows carry `method`, `seed`, `round` and `kind`="hitl" (plus `discovery` on round 0);
  baseline rows `kind`="baseline" and `round` = -1.
  """
  out = []
  for seed in seeds:
    for method in methods:
      t = time.perf_counter()
      res = run_hitl(embeddings, truth, method, seed, protocol)
      for stage in res["stages"]:
        row = dict(method=method.name, strategy=method.strategy, alpha=method.alpha, seed=seed,
                   kind="hitl", **stage)
        if stage["round"] == 0:
          row["discovery"] = res["discovery"].tolist()
        out.append(row)
      if log:
        last = res["stages"][-1]
        log(f"seed {seed} {method.name}: {last['labels']} labels, AUPR {last['aupr']:.4f}, "
            f"{last['positives_found']} positives found ({time.perf_counter() - t:.1f} s)")
    for name, rows in baseline_rows(truth, seed, protocol).items():
      res = run_baseline(embeddings, truth, rows, seed, protocol)
      out.append(dict(method=name, strategy="baseline", alpha=float("nan"), seed=seed,
                      kind="baseline", round=-1, **res))
      if log:
        log(f"seed {seed} {name}: AUPR {res['aupr']:.4f}")
  return out


# -- summaries ------------------------------------------------------------------------------

METRICS = ("aupr", "aupr_unlabelled", "purity", "completeness", "positives_found")


def summarise(rows: Sequence[dict[str, Any]], report_rounds: Sequence[int] = (0, 1, 10)
              ) -> list[dict[str, Any]]:
  """Mean and standard deviation over seeds per (method, round) at `report_rounds` and for
  the baselines; NaN values (e.g. purity with nothing selected) are left out of the mean and
  counted in `nan_<metric>`."""
  groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
  for r in rows:
    if r["kind"] == "baseline" or r["round"] in report_rounds:
      groups.setdefault((r["method"], r["round"]), []).append(r)
  out = []
  for (method, rnd), members in groups.items():
    entry = {"method": method, "round": rnd, "seeds": len(members),
             "labels": members[0]["labels"], "kind": members[0]["kind"]}
    if len({m["labels"] for m in members}) != 1:
      raise ValueError(f"{method} round {rnd}: label counts differ across seeds")
    for k in METRICS:
      v = np.array([m[k] for m in members], np.float64)
      ok = v[np.isfinite(v)]
      entry[k] = float(ok.mean()) if len(ok) else float("nan")
      entry[k + "_std"] = float(ok.std()) if len(ok) else float("nan")
      entry["nan_" + k] = int(len(v) - len(ok))
    out.append(entry)
  order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in rows))}
  out.sort(key=lambda e: (e["kind"] == "baseline", e["round"], order[e["method"]]))
  return out


_STAGE = {0: "5+5 prompts", 1: "1 round", 10: "10 rounds"}


def _cell(e: dict[str, Any], k: str, digits: int = 3) -> str:
  if not np.isfinite(e[k]):
    return "n/a"
  nan = f" ({e['nan_' + k]} n/a)" if e["nan_" + k] else ""
  return f"{e[k]:.{digits}f} ± {e[k + '_std']:.{digits}f}{nan}"


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
  """A Markdown table of `summarise` output (mean ± std over seeds)."""
  lines = ["| method | after | labels | AUPR (all) | AUPR (unlabelled) | purity | completeness "
           "| positives labelled |", "|" + " --- |" * 8]
  for e in summary:
    stage = "-" if e["kind"] == "baseline" else _STAGE.get(e["round"], f"{e['round']} rounds")
    lines.append(f"| {e['method']} | {stage} | {e['labels']} | {_cell(e, 'aupr')} | "
                 f"{_cell(e, 'aupr_unlabelled')} | {_cell(e, 'purity')} | "
                 f"{_cell(e, 'completeness')} | {_cell(e, 'positives_found', 1)} |")
  return "\n".join(lines) + "\n"


def plot_target(rows: Sequence[dict[str, Any]], title: str, path,
                prevalence: float | None = None) -> str:
  """PNG: AUPR over all objects and over the unlabelled ones against labels spent, per method,
  with the baselines (and `prevalence`, the AUPR of a random ranking); and the mean discovery
  curve (true positives among the labelled objects, prompts first)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  hitl = [r for r in rows if r["kind"] == "hitl"]
  baselines = list(dict.fromkeys(r["method"] for r in rows if r["kind"] == "baseline"))
  for ax, key, what in ((axes[0], "aupr", "all objects"),
                        (axes[1], "aupr_unlabelled", "unlabelled objects")):
    for m in dict.fromkeys(r["method"] for r in hitl):
      mine = [r for r in hitl if r["method"] == m]
      labels = sorted({r["labels"] for r in mine})
      ax.plot(labels, [_mean([r[key] for r in mine if r["labels"] == n]) for n in labels],
              marker="o", ms=3, label=m)
    for name in baselines:
      vals = [r[key] for r in rows if r["method"] == name]
      ax.errorbar([next(r["labels"] for r in rows if r["method"] == name)], [_mean(vals)],
                  yerr=[_std(vals)], fmt="s", capsize=3, label=name)
    if prevalence is not None:
      ax.axhline(prevalence, color="grey", ls=":", lw=1, label="random ranking")
    ax.set_xscale("log")
    ax.set_xlabel("labels spent")
    ax.set_ylabel(f"AUPR ({what})")
    ax.set_title(f"{title}: AUPR over {what}", fontsize=10)
    ax.legend(fontsize=7)
  for m in dict.fromkeys(r["method"] for r in hitl):
    curves = np.array([r["discovery"] for r in hitl if r["method"] == m and "discovery" in r],
                      np.float64)
    axes[2].plot(np.arange(1, curves.shape[1] + 1), curves.mean(axis=0), label=m)
  axes[2].set_xlabel("labels spent (prompts first)")
  axes[2].set_ylabel("true positives labelled (mean over seeds)")
  axes[2].set_title(f"{title}: discovery curve", fontsize=10)
  axes[2].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return os.fspath(path)


def _mean(values) -> float:
  v = np.asarray(values, np.float64)
  return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def _std(values) -> float:
  v = np.asarray(values, np.float64)
  return float(v[np.isfinite(v)].std()) if np.isfinite(v).any() else float("nan")
