"""`lvm-jax demo`: the main job on the embedded default, end to end on a laptop CPU.

1. simulate a small survey (`lvm_jax.sim`, with truth) in WORKDIR/survey: by default the `gzd`
   preset (bright, resolved galaxies of Galaxy Zoo DECaLS's selection, r = 14-17.77, whose
   arms, bars and dust lanes a person sees in the app);
2. pretrain the `tiny` LVM on it (config `pretrain:tiny`) in WORKDIR/train, or take a
   converted checkpoint given with `--checkpoint`;
3. export embeddings of every galaxy (`lvm_jax.export`, config `export:cpu`) to WORKDIR/embeddings;
4. start the human-in-the-loop app on them (unless `--no-serve`), with instructions. Its
   strategy is `similar` (prototype ranking, `lvm_jax.hitl.strategies`): after five prompts of a
   kind and five others it recommends the galaxies most like the prompts. The paper's rule
   (`--strategy paper`) shows the lowest scores first after 5 + 5 prompts, by design, and the
   few-label MLP's highest scores are outliers rather than look-alikes
   (`experiments/demo_recommendations.py`, docs/sim/demo_recommendations.md).

Every step resumes: rerunning the command skips what is done (the survey, the finished training
steps, the exported chunks).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from lvm_jax import extras
from lvm_jax.arguments import positive_int
from lvm_jax.hitl import strategies
from lvm_jax.sim import presets


def register(subparsers) -> None:
  p = subparsers.add_parser("demo", help="simulate a survey, pretrain tiny, export, serve the app",
                            description=__doc__.splitlines()[0])
  p.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/demo"))
  p.add_argument("--n", type=positive_int, default=2000, help="simulated galaxies (default 2000)")
  p.add_argument("--steps", type=positive_int, default=160,
                 help="training steps (default 160: about 3 minutes on 2 CPU cores)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--preset", default="gzd", choices=sorted(presets.PRESETS),
                 help="simulated survey preset (default gzd; see `lvm-jax simulate --help`)")
  p.add_argument("--checkpoint", type=pathlib.Path, default=None,
                 help="use this checkpoint (e.g. converted weights) instead of pretraining")
  p.add_argument("--strategy", default="similar", choices=sorted(strategies.STRATEGIES),
                 help="the app's recommendation strategy (default similar; paper: Fu et al.'s "
                      "alpha rule)")
  p.add_argument("--no-serve", action="store_true", help="stop after the export")
  p.add_argument("--port", type=int, default=5006)
  p.set_defaults(func=run)


def _say(message: str) -> None:
  print(f"[demo {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def simulate(workdir: pathlib.Path, n: int, seed: int, preset: str = "gzd") -> pathlib.Path:
  from lvm_jax.sim import survey
  out = workdir / "survey"
  if list(out.glob("*.h5")):
    _say(f"survey exists in {out}; skipping simulation")
    return out
  chosen = presets.get_preset(preset)
  r_lo, r_hi = chosen.selection.r_range
  _say(f"simulating {n} galaxies (preset {preset}: r = {r_lo:g}-{r_hi:g}, {chosen.stamp} px) "
       f"into {out}")
  survey.write_survey(out, n, seed=seed, preset=chosen)
  return out


def pretrain_config(survey_dir: pathlib.Path, n: int, steps: int | None, seed: int):
  """`pretrain:tiny` on the simulated survey of `n` galaxies: its held-out split is
  capped at a sixth of the survey (the preset's 500 needs more than 500 galaxies)."""
  from lvm_jax import config as config_lib
  config = config_lib.load_config("pretrain:tiny")
  overrides = [f"data.files={survey_dir}/*.h5", f"seed={seed}", "log.progress=True",
               f"data.val_size={min(int(config.data.val_size), max(1, n // 6))}"]
  if steps is not None:
    overrides.append(f"num_steps={steps}")
  return config_lib.apply_overrides(config, overrides)


def pretrain(workdir: pathlib.Path, survey_dir: pathlib.Path, n: int, steps: int | None,
             seed: int) -> pathlib.Path:
  from lvm_jax.train import trainer
  config = pretrain_config(survey_dir, n, steps, seed)
  _say(f"pretraining the tiny LVM for {config.num_steps} steps in {workdir / 'train'}")
  summary = trainer.train_and_evaluate(config, workdir / "train")
  _say(f"pretraining done: {summary.get('eval')}")
  return workdir / "train" / "checkpoints"


def export(workdir: pathlib.Path, checkpoint_dir: pathlib.Path,
           survey_dir: pathlib.Path) -> pathlib.Path:
  from lvm_jax.export import ExportSettings, export_survey
  out = workdir / "embeddings"
  _say(f"exporting embeddings to {out}")
  settings = ExportSettings.from_config("export:cpu", carry=("truth/class_name",))
  summary = export_survey(checkpoint_dir, survey_dir, out, settings)
  _say(f"export done: {summary}")
  return out


def run(args: argparse.Namespace) -> int:
  extras.require("sim", "app", command="demo")
  start = time.time()
  workdir = args.workdir.absolute()
  survey_dir = simulate(workdir, args.n, args.seed, args.preset)
  checkpoint_dir = args.checkpoint or pretrain(workdir, survey_dir, args.n, args.steps, args.seed)
  embeddings = export(workdir, checkpoint_dir, survey_dir)
  _say(f"prepared in {time.time() - start:.0f} s")
  print(f"""
Embeddings: {embeddings}
From a notebook:
    from lvm_jax.hitl import Session
    s = Session("{embeddings}", store="{workdir / 'labels.sqlite'}", strategy="{args.strategy}")
    s.label([...five ids you like...], [1, 1, 1, 1, 1]); s.label([...five others...], [0] * 5)
    s.next_round()
""")
  if args.no_serve:
    return 0
  from lvm_jax.hitl.app.data import AppConfig  # pylint: disable=g-import-not-at-top
  from lvm_jax.hitl.app.server import basic_auth_secret, serve  # pylint: disable=g-import-not-at-top
  print(f"Open http://127.0.0.1:{args.port}/ : label five galaxies of a kind you want (1) and five "
        "you do not (0), then press 'Next round'. Ctrl-C stops the server.")
  config = AppConfig(embeddings=embeddings, images=survey_dir, store=workdir / "labels.sqlite",
                     out=workdir / "hitl_exports", seed=args.seed,
                     session=dict(strategy=args.strategy))
  serve(config, port=args.port, basic_auth=basic_auth_secret())
  return 0
