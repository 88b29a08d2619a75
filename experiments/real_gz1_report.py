r"""docs/real from the outputs of `experiments/real_gz1.py`: results.json, results.md, figures.

    python experiments/real_gz1_report.py --main runs/gz1_out \
        --recipe gz1=runs/gz1_s1000_out --recipe paper_recipe=runs/paper_s1000_out --out docs/real

`--main`: the OUT folder(s) of the experiments on the checkpoint the figures are about; each
`--recipe NAME=OUT`: the probe, hitl and mergers of another checkpoint, side by side under
`recipes`. In results.json each experiment's key holds only its figures (the shapes below);
its provenance, settings and every run go to `<key>_details`:

  linear_probe -> {lvm, pca, random_init} -> {median, ci95}
  table1 -> {Pre_train, Multi_uniform, Multi_active} -> {acc, precision, recall, f1}
  few_shot -> model -> {labels per class -> {median, ci95}}
  hitl_spiral -> {lvm_5+5, lvm_5+5+10, ..., resnet18_1000} -> {median, ci95}
  merger_search -> strategy -> {found_at_100: {median, ci95}}
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

import numpy as np

import real_gz1

STRATEGIES = ("Pre_train", "Multi_uniform", "Multi_active")
PAPER_HITL = {"lvm_5+5+10": 0.8895, "lvm_15+15": 0.8683, "resnet18_50+50": 0.8561,
              "lvm_1000": 0.8921}


def _figures(value: Any) -> bool:
  return isinstance(value, dict) and ("median" in value or "found_at_100" in value)


def split(key: str, result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
  """(figures, details) of one experiment's output (idempotent on an already split one)."""
  if key == "linear_probe":
    keep = lambda k, v: k in ("lvm", "pca", "random_init")  # noqa: E731
  elif key == "table1":
    keep = lambda k, v: k in STRATEGIES  # noqa: E731
  elif key == "few_shot":
    keep = lambda k, v: isinstance(v, dict) and v and all(  # noqa: E731
        isinstance(x, dict) and "median" in x for x in v.values())
  else:
    keep = lambda k, v: _figures(v)  # noqa: E731
  figures = {k: v for k, v in result.items() if keep(k, v)}
  return figures, {k: v for k, v in result.items() if k not in figures}


def _ci(s: dict[str, Any], nd: int = 3) -> str:
  lo, hi = s["ci95"]
  return f"{s['median']:.{nd}f} ({lo:.{nd}f}-{hi:.{nd}f})"


def load(out: pathlib.Path) -> dict[str, Any]:
  results = json.loads((out / "results.json").read_text())
  merged: dict[str, Any] = {}
  for key, value in results.items():
    if key.endswith("_details"):
      merged.setdefault(key, {}).update(value)
      continue
    figures, details = split(key, value)
    merged[key] = figures
    merged.setdefault(f"{key}_details", {}).update(details)
  return merged


def markdown(r: dict[str, Any]) -> str:
  lines = ["# Galaxy Zoo 1: the paper's experiments on real galaxies (tables)", "",
           "Medians over seeds with 95 % bootstrap intervals; `results.json` holds every run "
           "and its provenance. The reading is in [README.md](README.md).", ""]
  if "linear_probe" in r:
    d = r["linear_probe_details"]
    lines += ["## Linear probe, 4 classes", "",
              f"{d['train_per_class']} training and {d['test_per_class']} test galaxies per class.",
              "", "| features | accuracy |", "|---|---|"]
    lines += [f"| {k} | {_ci(v)} |" for k, v in r["linear_probe"].items()]
    lines += [f"| LVM minus {b} (paired) | {_ci(d[f'lvm_minus_{b}'])} |"
              for b in ("pca", "random_init") if f"lvm_minus_{b}" in d]
    lines.append("")
  if "table1" in r:
    d = r["table1_details"]
    lines += ["## Table 1: strategies, 4 classes", "",
              f"{d['train_per_class']} training galaxies per class ({d['fit_rows']} fit, 32 held "
              f"out for Multi_active), {d['test_per_class']} test galaxies per class; tasks "
              f"{', '.join(d['tasks'])}; {d['steps']} steps of {d['batch_size']}.", "",
              "| strategy | accuracy | precision | recall | F1 | paper accuracy |",
              "|---|---|---|---|---|---|"]
    for name, s in r["table1"].items():
      lines.append(f"| {name} | " + " | ".join(_ci(s[k]) for k in ("acc", "precision", "recall",
                                                                   "f1"))
                   + f" | {d['paper'][name]} |")
    lines.append("")
  if "few_shot" in r:
    d = r["few_shot_details"]
    per = list(next(iter(r["few_shot"].values())))
    lines += ["## Fig. 5: few-shot accuracy, 4 classes", "",
              f"Training galaxies per class in the train split: {d['train_split_per_class']} "
              f"({d['note']}); {d['test_per_class']} test galaxies per class.", "",
              "| model | " + " | ".join(f"{k} per class" for k in per) + " |",
              "|---|" + "---|" * len(per)]
    lines += [f"| {m} | " + " | ".join(_ci(v[k]) for k in per) + " |"
              for m, v in r["few_shot"].items()]
    lines += ["", "![few-shot](few_shot.png)", ""]
  if "hitl_spiral" in r:
    d = r["hitl_spiral_details"]
    lines += ["## Fig. 10: face-on spirals by HITL, AUPR", "",
              f"{d['n_galaxies']} galaxies ({d['spirals']} spirals); {d['metric']}.", "",
              "| labels | AUPR | paper |", "|---|---|---|"]
    lines += [f"| {k} | {_ci(v)} | {PAPER_HITL.get(k, '')} |" for k, v in r["hitl_spiral"].items()]
    lines.append("")
  if "merger_search" in r:
    d = r["merger_search_details"]
    lines += ["## Mergers: rare-object search", "",
              f"{d['mergers']} mergers in {d['pool']} galaxies; prompts {d['prompts']}; 10 rounds "
              "of 10 labels.", "", "| strategy | mergers found in 100 labels |", "|---|---|"]
    lines += [f"| {k} | {_ci(v['found_at_100'], 1)} |" for k, v in r["merger_search"].items()]
    diffs = d.get("similar_minus") or real_gz1.paired_differences(
        r["merger_search"], "similar")["similar_minus"]
    lines += ["", "| similar minus (paired by seed) | mergers |", "|---|---|"]
    lines += [f"| {k} | {_ci(v, 1)} |" for k, v in diffs.items()]
    lines += ["", "![mergers](mergers.png)", ""]
  times = {k[:-len("_details")]: v["provenance"]["seconds"] for k, v in r.items()
           if k.endswith("_details") and "seconds" in v.get("provenance", {})}
  if times:
    lines += ["## Wall times", "",
              "Each command on the 2-core CPU (shared with the other experiments and test runs, "
              "so upper bounds), first run including exports and compilation:", "",
              "| experiment | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in times.items()]
    lines.append("")
  if "rerun" in r:
    c = r["rerun"]
    lines += ["## Rerun with the same seeds", "",
              f"{c['within']} of {c['figures']} figures of the rerun lie within the first run's "
              "95 % intervals" + (": " + ", ".join(k for k, v in c["rows"].items()
                                                   if not v["within"]) + " do not."
                                  if c["within"] < c["figures"] else "."), ""]
  if "recipes" in r:
    lines += ["## Recipes side by side (same step)", "",
              "| recipe | step | probe LVM | LVM - PCA | AUPR 5+5+10 | AUPR 15+15 | mergers "
              "(similar) | mergers (paper rule) |", "|---|---|---|---|---|---|---|---|"]
    for name, x in r["recipes"].items():
      lines.append(f"| {name} | {x.get('step', '')} | {_ci(x['linear_probe']['lvm'])} | "
                   f"{_ci(x['linear_probe_details']['lvm_minus_pca'])} | "
                   f"{_ci(x['hitl_spiral']['lvm_5+5+10'])} | {_ci(x['hitl_spiral']['lvm_15+15'])}"
                   f" | {_ci(x['merger_search']['similar']['found_at_100'], 1)} | "
                   f"{_ci(x['merger_search']['paper_a0.5']['found_at_100'], 1)} |")
    lines.append("")
  return "\n".join(lines)


def plots(r: dict[str, Any], out: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  if "few_shot" in r:
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, v in r["few_shot"].items():
      k = [int(x) for x in v]
      med = [v[str(x)]["median"] for x in k]
      err = np.abs(np.array([v[str(x)]["ci95"] for x in k]).T - med)
      ax.errorbar(k, med, yerr=err, marker="o", capsize=3, label=model)
    ax.set(xscale="log", xlabel="labelled galaxies per class", ylabel="accuracy (4 classes)",
           title="Galaxy Zoo 1 few-shot (median, 95 % CI)")
    ax.axhline(0.25, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "few_shot.png", dpi=110)
    plt.close(fig)
  if "merger_search" in r:
    d = r["merger_search_details"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in r["merger_search"]:
      runs = np.array(r["merger_search"][name]["precision_per_round"]["runs"]) * 10  # per round
      found = np.cumsum(runs, axis=1)
      ax.plot(np.arange(1, found.shape[1] + 1) * 10, np.median(found, 0), marker="o", label=name)
      ax.fill_between(np.arange(1, found.shape[1] + 1) * 10, np.percentile(found, 25, 0),
                      np.percentile(found, 75, 0), alpha=0.15)
    ax.set(xlabel="labels after the prompts", ylabel="mergers found (median, IQR)",
           title=f"Merger search: {d['mergers']} mergers in {d['pool']} galaxies")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "mergers.png", dpi=110)
    plt.close(fig)


def _medians(tree: Any, path: str = "") -> dict[str, dict[str, Any]]:
  """{path: {median, ci95}} of every summary in a results tree."""
  if isinstance(tree, dict) and "median" in tree and "ci95" in tree:
    return {path: tree}
  if isinstance(tree, dict):
    return {k: v for key, sub in tree.items() if not key.endswith("_details")
            for k, v in _medians(sub, f"{path}/{key}" if path else key).items()}
  return {}


def compare(first: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
  """Each figure the rerun shares with the first run: both medians, and whether the rerun's
  median lies in the first run's 95 % interval."""
  a, b = _medians(first), _medians(rerun)
  rows = {k: {"first": a[k]["median"], "rerun": b[k]["median"], "ci95": a[k]["ci95"],
              "within": bool(a[k]["ci95"][0] - 1e-9 <= b[k]["median"] <= a[k]["ci95"][1] + 1e-9)}
          for k in sorted(set(a) & set(b))}
  return {"figures": len(rows), "within": sum(r["within"] for r in rows.values()), "rows": rows}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--main", type=pathlib.Path, nargs="+", required=True,
                 help="OUT folder(s) of the experiments on the main checkpoint (merged)")
  p.add_argument("--recipe", action="append", default=[], help="NAME=OUT")
  p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/real"))
  p.add_argument("--rerun", type=pathlib.Path, default=None,
                 help="OUT of a rerun with the same seeds: recorded under `rerun` (each figure "
                      "against the first run's interval)")
  args = p.parse_args(argv)
  from lvm_jax import checkpoint
  r: dict[str, Any] = {}
  for folder in args.main:
    r.update(load(folder))
  for item in args.recipe:
    name, folder = item.split("=", 1)
    x = load(pathlib.Path(folder))
    prov = x.get("linear_probe_details", {}).get("provenance", {})
    x["step"] = prov.get("pretrained_step") or checkpoint.latest_step(
        pathlib.Path(prov["pretrained"]) / "checkpoints")
    r.setdefault("recipes", {})[name] = x
  if args.rerun is not None:
    r["rerun"] = compare(r, load(args.rerun))
    print(f"rerun: {r['rerun']['within']} of {r['rerun']['figures']} figures within the first "
          "run's 95 % intervals")
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "results.json").write_text(json.dumps(r, indent=1, default=float))
  (args.out / "results.md").write_text(markdown(r))
  plots(r, args.out)
  print(f"wrote {args.out}/results.json, results.md and figures")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
