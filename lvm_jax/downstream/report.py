"""The downstream report: WORKDIR/report.md with the paper's tables, and its PNG figures.

Tables (the paper's layout): classification Acc / Pre / Recall / F1 per strategy (Table 1);
restoration MSE / PSNR / SSIM and aperture flux error for the degraded input, the classical
baselines and each strategy, per degradation mode (Table 2); reconstruction (inpainting) for the
masked input and each strategy, and per patch size and masked fraction (Tables 3-4); parameter
extraction; the few-shot curve (Fig. 5); the Multi_active shares over time; the targets (each met or not).
Figures: few_shot.png, shares.png, parameters.png, gallery_restoration.png,
gallery_inpainting.png. PSNR and SSIM use each clean target's own range (max - min over pixels
and bands, network units) as data_range; SSIM is scikit-image's (7 x 7 uniform window).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from lvm_jax.data import preprocess
from lvm_jax.downstream import datasets
from lvm_jax.downstream import labels as labels_lib
from lvm_jax.downstream.definitions import CALIBRATED_LABEL, PSF_AWARE_LABEL



def _save(fig, path, dpi: int) -> None:
  """Lay out, write and close a Matplotlib figure."""
  import matplotlib.pyplot as plt
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)

def _f(x, nd=3) -> str:
  return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def _table(header, rows) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines)


def _strategy_order(results) -> list[str]:
  return list(results["strategies"])


LVM_STRATEGIES = ("Pre_train", "Fine_tuned", "Multi_uniform", "Multi_active")


FILLED_LABEL = "Normalised convolution"


def targets(results) -> list[tuple[str, bool, str]]:
  """The evaluation's targets, each met or not: (statement, met, measured)."""
  s, ref = results["strategies"], results["references"]
  out = []
  blind = max(LVM_STRATEGIES,
              key=lambda k: s[k]["restoration"]["paper"]["psnr"] if k in s else -np.inf)
  candidates = {blind: s[blind]["restoration"],
                **{k: v["restoration"] for k, v in results.get("psf_aware", {}).items()}}
  for mode in ("paper", "physical"):
    rl = ref["restoration"]["Richardson-Lucy"][mode]
    passes = lambda r, rl=rl: (r["psnr"] > rl["psnr"] and r["ssim"] > rl["ssim"]  # noqa: E731
                               and abs(r["flux_err_median"]) < 0.01)
    # the candidate that meets the target, else the one with the best PSNR in this mode
    best = max(candidates, key=lambda k: (passes(candidates[k][mode]),
                                          candidates[k][mode]["psnr"]))
    r = candidates[best][mode]
    ok = passes(r)
    out.append((f"restoration ({mode} mode, {best}) beats Richardson-Lucy with the true PSF on "
                "PSNR and SSIM, median aperture flux error within 1%", ok,
                f"PSNR {r['psnr']:.2f} vs {rl['psnr']:.2f} dB, SSIM {r['ssim']:.3f} vs "
                f"{rl['ssim']:.3f}, flux {100 * r['flux_err_median']:+.2f}% "
                f"(median |err| {100 * r['flux_abs_err_median']:.2f}%)"))
  key = next((k for k in ref["inpainting"] if k.endswith("_0.5")), None)
  if key:
    m = max(s[k]["inpainting"][key]["psnr_masked"] for k in s if k in LVM_STRATEGIES)
    base = ref["inpainting"][key]["psnr_masked"]
    ceiling = ref.get("noise_limited_psnr")
    note = "" if ceiling is None else f"; sky-noise ceiling {ceiling:.2f} dB ({ceiling - base:+.2f})"
    filled = ref.get("inpainting_filled", {}).get(key)
    if filled is not None:
      note += f"; {FILLED_LABEL.lower()} {filled['psnr_masked']:.2f} dB"
    out.append((f"inpainting beats the masked input by >= 5 dB PSNR on masked pixels ({key})",
                m - base >= 5.0, f"{m:.2f} vs {base:.2f} dB ({m - base:+.2f}){note}"))
  acc = {k: s[k]["classification"]["accuracy"] for k in s}
  multi = max(acc.get("Multi_uniform", -1), acc.get("Multi_active", -1))
  out.append(("multitask beats Pre_train (classification accuracy)", multi > acc["Pre_train"],
              f"{multi:.3f} vs {acc['Pre_train']:.3f}"))
  out.append(few_shot_target(results["few_shot"]))
  return out


def _fine_tuned_steps_text(results, config) -> str:
  steps = results.get("strategies", {}).get("Fine_tuned", {}).get("steps")
  if not steps or len(set(steps.values())) == 1:
    return f"{config.steps.get('fine_tuned', 0)} per task"
  return "per task " + ", ".join(f"{k} {v}" for k, v in steps.items())


def _calibration_note(calibrated, config) -> str:
  if not calibrated:
    return ""
  scale = calibrated["flux_scale"]
  return (f" {CALIBRATED_LABEL}: the same model, its restored flux multiplied per "
          f"degradation mode by the factor that brings the median aperture-flux ratio of "
          f"{config.restoration.flux_calibration_rows} training galaxies, degraded afresh, to 1 "
          f"(paper {scale['paper']:.4f}, physical {scale['physical']:.4f}; the test set is not "
          "used).")


def few_shot_target(fs: dict[str, list[dict[str, Any]]]) -> tuple[str, bool, str]:
  """The few-shot target: at the fewest labels per class, the better LVM row (mean accuracy over
  seeds) beats every baseline row. `fs` maps a row label ("LVM ..." or a baseline) to runs."""
  lvm_rows = {k: v for k, v in fs.items() if k.startswith("LVM")}
  lowest = min(r["per_class"] for rows in lvm_rows.values() for r in rows)
  mean = lambda rows: float(np.mean([r["accuracy"] for r in rows if r["per_class"] == lowest]))  # noqa: E731
  best, lvm = max(((k, mean(v)) for k, v in lvm_rows.items()), key=lambda kv: kv[1])
  others = {k: mean(v) for k, v in fs.items() if k not in lvm_rows}
  return (f"the LVM beats the ResNets at {lowest} labels per class (mean over seeds; the "
          "better LVM row)", all(lvm > v for v in others.values()),
          f"{best} {lvm:.3f} vs " + ", ".join(f"{k} {v:.3f}" for k, v in others.items()))


def _few_shot_rows(fs) -> tuple[list[str], list[list[str]]]:
  per_class = sorted({r["per_class"] for rows in fs.values() for r in rows})
  header = ["labels per class", *fs]
  rows = []
  for p in per_class:
    row = [str(p)]
    for rows_k in fs.values():
      acc = [r["accuracy"] for r in rows_k if r["per_class"] == p]
      row.append(f"{np.mean(acc):.3f} ± {np.std(acc):.3f} (n={len(acc)})")
    rows.append(row)
  return header, rows


def markdown(results, config) -> str:
  s, ref = results["strategies"], results["references"]
  prov = results["provenance"]
  names = _strategy_order(results)
  parts = [f"# Downstream tasks: `{config.variant}`\n",
           f"Pretrained LVM: `{prov['pretrained']}` (step {prov['pretrained_step']}); survey "
           f"`{config.data.files}`: {results['n_train']} training and {results['n_test']} test "
           f"galaxies (the test galaxies are the pretraining's held-out split); classes "
           f"{results['classes']} (training counts per class id "
           f"{results['class_counts_train']}). Git {prov['git_sha']}, created "
           f"{prov['created_utc']} on {prov['host']} ({prov['devices'][0]}). Each strategy "
           f"trains the same four heads with batch {config.batch_size}: Pre_train "
           f"{config.steps.pre_train} steps, multitask {config.steps.multi}, Fine_tuned "
           f"{_fine_tuned_steps_text(results, config)}, ResNets "
           f"{config.steps.resnet} (ResNet width {config.resnet.width}). Seed {config.seed}.\n",
           "## Targets\n",
           _table(["target", "met", "measured"],
                  [(b, "yes" if ok else "**no**", m) for b, ok, m in targets(results)]),
           "\n## Table 1: classification (test set)\n",
           _table(["strategy", "Acc", "Pre", "Recall", "F1"],
                  [(k, *(_f(s[k]["classification"][m]) for m in
                         ("accuracy", "precision", "recall", "f1"))) for k in names])]
  parts.append("\n## Table 2: restoration (degraded -> clean)\n")
  for mode in ("paper", "physical"):
    rows = []
    for k, v in [*ref["restoration"].items(), *((k, s[k]["restoration"]) for k in names),
                 *((k, v["restoration"]) for k, v in results.get("psf_aware", {}).items())]:
      r = v[mode]
      rows.append((k, _f(r["mse"], 4), _f(r["psnr"], 2), _f(r["ssim"], 3),
                   f"{100 * r['flux_err_median']:+.2f}%", f"{100 * r['flux_abs_err_median']:.2f}%"))
    parts += [f"\n{mode} mode:\n", _table(["input / strategy", "MSE", "PSNR (dB)", "SSIM",
                                            "aperture flux err (median)", "median |err|"], rows)]
  parts.append(f"\nAperture radius {config.restoration.aperture_radius_px} px (network pixels) "
               f"about the centre, linear flux (inverse asinh); Wiener balance and Richardson-Lucy "
               f"iterations tuned on training galaxies: {ref['tuned']}."
               + (f" {PSF_AWARE_LABEL}: the LVM fine-tuned to refine that "
                  "Richardson-Lucy restoration (PSF-aware, as Richardson-Lucy is); the rows above "
                  "it restore the degraded image blind." if results.get("psf_aware") else "")
               + _calibration_note(results.get("psf_aware", {}).get(CALIBRATED_LABEL),
                                   config)
               + "\n")
  key = next((k for k in ref["inpainting"] if k.endswith("_0.5")), next(iter(ref["inpainting"])))
  parts.append(f"\n## Table 3: reconstruction of masked images ({key})\n")
  rows = []
  filled = ref.get("inpainting_filled", {})
  for k, v in [("Masked input", ref["inpainting"]),
               *([(FILLED_LABEL, filled)] if filled else []),
               *((k, s[k]["inpainting"]) for k in names)]:
    r = v[key]
    rows.append((k, _f(r["mse"], 4), _f(r["psnr"], 2), _f(r["ssim"], 3), _f(r["mse_masked"], 4),
                 _f(r["psnr_masked"], 2)))
  parts.append(_table(["input / strategy", "MSE", "PSNR", "SSIM", "MSE masked", "PSNR masked"],
                      rows))
  parts.append("\n## Table 4: reconstruction PSNR on masked pixels (dB) per patch size and "
               "masked fraction\n")
  header = ["patch, fraction", "Masked input", *([FILLED_LABEL] if filled else []), *names]
  rows = [(k, _f(ref["inpainting"][k]["psnr_masked"], 2),
           *([_f(filled[k]["psnr_masked"], 2)] if filled else []),
           *(_f(s[n]["inpainting"][k]["psnr_masked"], 2) for n in names))
          for k in ref["inpainting"]]
  parts.append(_table(header, rows))
  if filled:
    parts.append(f"\n{FILLED_LABEL}: the masked pixels filled by normalised convolution of the "
                 f"visible ones (Gaussians of {list(config.inpainting.fill_sigmas_px)} px, "
                 "`lvm_jax.downstream.definitions.fill_masked`)"
                 + ("; it is also the networks' input (inpainting.prefill)."
                    if config.inpainting.get("prefill", False) else
                    "; the networks see the masked input (inpainting.prefill off).") + "\n")
  if "noise_limited_psnr" in ref:
    parts.append(f"\nSky-noise ceiling: {ref['noise_limited_psnr']:.2f} dB, the masked-pixel PSNR "
                 "of a prediction that knew the noiseless image (its error is the targets' own sky "
                 "noise, measured in each test image's outer 6 px; "
                 "`lvm_jax.downstream.metrics.noise_limited_psnr`). No inpainting can beat it on "
                 "average.\n")
  parts.append("\n## Parameter extraction (test set; Gaussian NLL heads)\n")
  rows = []
  for n in names:
    for p, m in s[n]["parameters"].items():
      rows.append((n, p, _f(m["bias"], 4), _f(m["scatter"], 4), _f(m["sigma_nmad"], 4),
                   _f(m["outlier_fraction"], 3), _f(m.get("coverage68"), 3)))
  parts.append(_table(["strategy", "parameter", "bias", "scatter", "sigma_NMAD",
                       "outliers (>3 NMAD)", "68% coverage"], rows))
  parts.append("\nlog10 quantities are dex; pa_deg is the folded PA error in degrees (its "
               "coverage is not defined). No photometric redshift: the simulated survey has no "
               "z_spec (all NaN), so `lvm_jax.downstream.metrics.photoz_metrics` has nothing to score.\n"
               "\n![parameters](parameters.png)\n")
  parts.append("\n## Few-shot classification (Fig. 5)\n")
  header, rows = _few_shot_rows(results["few_shot"])
  parts += [_table(header, rows), "\nTest accuracy, mean ± std over seeds (the seed draws the "
            "labelled subset, the head's initialisation and the batch order). LVM + head: the "
            "pretrained encoder frozen; LVM fine-tuned + head: the pretrained encoder trained "
            "with the head; ResNets from scratch with the same head and steps.\n",
            "\n![few-shot](few_shot.png)\n"]
  if "shares" in s.get("Multi_active", {}):
    parts.append("\n## Multi_active shares over time\n")
    hist = s["Multi_active"]["shares"]
    tnames = list(hist[0]["shares"])
    parts.append(_table(["step", *tnames, *(f"held-out {t}" for t in tnames)],
                        [(h["step"], *(_f(h["shares"][t], 3) for t in tnames),
                          *(_f(h["heldout_loss"][t], 4) for t in tnames)) for h in hist]))
    parts.append("\nw_t = (1 - floor) softmax(r_t / T) + floor / n with r_t the held-out loss "
                 "over its value before training, or for a log loss (cross-entropy, Gaussian "
                 "NLL, log MSE) the exponent of its change "
                 f"(T = {config.active.temperature}, floor = "
                 f"{config.active.floor}, every {config.active.every} steps).\n\n"
                 "![shares](shares.png)\n")
  parts.append("\n## Galleries\n\n![restoration](gallery_restoration.png)\n\n"
               "![inpainting](gallery_inpainting.png)\n")
  parts.append("\n## Timings (s)\n")
  parts.append(_table(["stage", "seconds"], [(k, f"{v:.0f}") for k, v in
                                              results["timings_s"].items()]))
  parts.append("\n\nProvenance: `results.json` (`provenance`: git SHA, packages, config).\n")
  return "\n".join(parts)


def _rgb(images_net, prep) -> np.ndarray:
  flux = datasets.to_flux(images_net, prep)
  return np.stack([preprocess.display_rgb(x) for x in flux])


def figures(workdir: pathlib.Path, results, data, strategies, refs, config) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  prov = results["provenance"]
  stamp = f"lvm-jax {prov['git_sha'][:12]} {prov['created_utc']}"
  # Few-shot curve.
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for label, rows in results["few_shot"].items():
    per = sorted({r["per_class"] for r in rows})
    acc = [[r["accuracy"] for r in rows if r["per_class"] == p] for p in per]
    ax.errorbar(per, [np.mean(a) for a in acc], yerr=[np.std(a) for a in acc], marker="o",
                capsize=3, label=label)
  ax.set_xscale("log")
  ax.set_xlabel("labelled galaxies per class")
  ax.set_ylabel("test accuracy")
  ax.legend()
  ax.set_title(stamp, fontsize=6)
  _save(fig, workdir / "few_shot.png", 120)
  # Shares.
  s = results["strategies"]
  if "shares" in s.get("Multi_active", {}):
    hist = s["Multi_active"]["shares"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for t in hist[0]["shares"]:
      ax.plot([h["step"] for h in hist], [h["shares"][t] for h in hist], marker=".", label=t)
    ax.set_xlabel("step")
    ax.set_ylabel("share")
    ax.legend()
    ax.set_title(stamp, fontsize=6)
    _save(fig, workdir / "shares.png", 120)
  # Parameters: predicted vs true for the strategy with the lowest mag scatter.
  best = min(strategies, key=lambda k: strategies[k]["parameters"]["mag_r"]["scatter"])
  pred = strategies[best]["_predictions"]
  truth = data["test"]["params_raw"]
  cols = [0, 1, 2, 5]
  fig, axes = plt.subplots(1, 5, figsize=(16, 3.4))
  for ax, j in zip(axes, cols):
    ax.errorbar(truth[:, j], pred["parameters_mean"][:, j], yerr=pred["parameters_sigma"][:, j],
                fmt=".", ms=2, alpha=0.4, elinewidth=0.5)
    lo, hi = np.percentile(truth[:, j], [1, 99])
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    cov = strategies[best]["parameters"][labels_lib.PARAMETERS[j]].get("coverage68")
    ax.set_title(f"{labels_lib.PARAMETERS[j]} (68% cov {_f(cov, 2)})", fontsize=8)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
  pa_p = labels_lib.pa_from_targets(pred["parameters_mean"][:, 3], pred["parameters_mean"][:, 4])
  pa_t = labels_lib.pa_from_targets(truth[:, 3], truth[:, 4])
  axes[4].plot(pa_t, pa_p, ".", ms=2, alpha=0.5)
  axes[4].set_title("PA (deg E of N)", fontsize=8)
  axes[4].set_xlabel("true")
  fig.suptitle(f"{best}; {stamp}", fontsize=7)
  _save(fig, workdir / "parameters.png", 110)
  # Galleries.
  prep = preprocess.Preprocessing.from_dict(prov["preprocessing"])
  n = int(config.report.gallery_rows)
  test = data["test"]
  lvm = [k for k in LVM_STRATEGIES if k in strategies]
  cols = {"degraded (paper)": test["degraded_paper"][:n],
          "Richardson-Lucy": refs["gallery"]["rl_paper"][:n]}
  for k in lvm:
    cols[k] = strategies[k]["_gallery_restoration"][:n]
  cols["clean"] = test["image"][:n]
  _grid(plt, workdir / "gallery_restoration.png", cols, prep, stamp)
  cols = {"masked input": strategies[lvm[0]]["_gallery_masked"][:n]}
  for k in lvm:
    cols[k] = strategies[k]["_gallery_inpainting"][:n]
  cols["clean"] = test["image"][:n]
  _grid(plt, workdir / "gallery_inpainting.png", cols, prep, stamp)


def _grid(plt, path, cols, prep, stamp) -> None:
  n = len(next(iter(cols.values())))
  fig, axes = plt.subplots(n, len(cols), figsize=(1.8 * len(cols), 1.8 * n), squeeze=False)
  for j, (name, images) in enumerate(cols.items()):
    rgb = _rgb(images, prep)
    for i in range(n):
      axes[i, j].imshow(rgb[i], origin="lower")
      axes[i, j].set_xticks([])
      axes[i, j].set_yticks([])
      if i == 0:
        axes[i, j].set_title(name, fontsize=7)
  fig.suptitle(stamp, fontsize=6)
  _save(fig, path, 110)


def write_report(workdir, results, data, strategies, refs, config) -> pathlib.Path:
  workdir = pathlib.Path(workdir)
  figures(workdir, results, data, strategies, refs, config)
  path = workdir / "report.md"
  path.write_text(markdown(results, config))
  (workdir / "provenance.json").write_text(json.dumps(results["provenance"], indent=2))
  return path


def _json_default(x):
  if isinstance(x, (np.floating, np.integer)):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(type(x).__name__)


def write(workdir, evaluation, config) -> pathlib.Path:
  """WORKDIR/results.json, report.md, provenance.json and the figures of an
  `lvm_jax.downstream.evaluation.Evaluation`; returns the report's path."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "results.json").write_text(
      json.dumps(evaluation.results, indent=2, default=_json_default))
  return write_report(workdir, evaluation.results, evaluation.data, evaluation.strategies,
                      evaluation.refs, config)
