"""`lvm-jax convert-torch`: published PyTorch weights -> an lvm-jax Orbax checkpoint."""

from __future__ import annotations

import argparse
import pathlib

from lvm_jax import extras


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "convert-torch", help="convert a PyTorch SUNet/LVM state dict to an Orbax checkpoint",
      description="Reads .pth/.pt (without torch), .npz or .safetensors; writes OUT_DIR/0/.")
  p.add_argument("input", type=pathlib.Path, help="weights file (.pth, .npz, .safetensors)")
  p.add_argument("out_dir", type=pathlib.Path, help="checkpoint directory to create")
  p.add_argument("--preset", default="lvm_100m", help="model preset (default lvm_100m)")
  p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                 help="override a model config field, e.g. --set img_size=64")
  p.add_argument("--preprocessing", default="paper", choices=("paper", "fixed", "resize"),
                 help="preprocessing mode the weights expect, recorded in the metadata "
                      "(default paper: raw nanomaggies, adaptive crop, resize to img_size)")
  p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
  extras.require("data", command="convert-torch")  # the preprocessing record: OpenCV, scikit-image
  from lvm_jax import checkpoint
  from lvm_jax import provenance
  from lvm_jax import convert
  from lvm_jax import models
  from lvm_jax.data import preprocess
  from lvm_jax import config as config_lib

  config = config_lib.apply_overrides(models.preset(args.preset), args.overrides)
  state = convert.load_torch_checkpoint(args.input)
  params = convert.params_from_torch(state, config)
  if args.out_dir.exists() and any(args.out_dir.iterdir()):
    raise SystemExit(f"{args.out_dir} exists and is not empty; refusing to overwrite")
  meta = {"source": {"kind": "converted_torch", "path": str(args.input.resolve()),
                     "sha256": provenance.sha256_file(args.input), "preset": args.preset,
                     "overrides": list(args.overrides)},
          "preprocessing": preprocess.Preprocessing(mode=args.preprocessing,
                                                    out_size=config.img_size).to_dict()}
  checkpoint.save(args.out_dir, 0, params=params, config={"model": config.to_dict()}, meta=meta)
  print(f"wrote {models.count_params(params):,} parameters to {args.out_dir}")
  return 0
