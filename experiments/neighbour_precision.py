"""Similarity-search quality: neighbours' class precision@k of exported embeddings.

    python experiments/neighbour_precision.py --checkpoint /tmp/tiny_run/checkpoints

On a held-out simulated survey (simulated here unless `--data` is given; never seen in
pretraining: another seed), every galaxy queries `lvm_jax.export.search.cosine_knn` for its k nearest
other galaxies (itself excluded) and precision@k is the fraction of them with its true class.
Three embeddings of the same preprocessed images go through the same export and search path:

  * the pretrained checkpoint (`lvm_jax.export.export_survey`),
  * the same network randomly initialised (a checkpoint written with the same metadata),
  * PCA of the preprocessed pixels with as many components as the embedding has.

Also reported: leave-one-out k-NN accuracy (majority vote) of each, and the class prevalence
(what a search that ignores the image scores on average). Writes a JSON with provenance.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np


def _export(checkpoint_dir, data, out, carry, batch):
  from lvm_jax.export import survey
  settings = survey.ExportSettings(batch=batch, chunk_size=4096, compute_dtype="float32",
                                   carry=(carry,), workers=2, overwrite=True)
  return survey.export_survey(checkpoint_dir, data, out, settings, progress=False)


def _random_init_checkpoint(trained: str, out: pathlib.Path, seed: int) -> pathlib.Path:
  """A checkpoint of the trained one's network and preprocessing with random parameters."""
  from lvm_jax import checkpoint, models
  config = checkpoint.read_json(trained, "config")
  meta = checkpoint.read_json(trained, "meta")
  model = models.build(config["model"])
  params = models.init_params(model, seed)
  meta = {k: v for k, v in meta.items() if k in ("preprocessing", "fast_resize", "image_kind")}
  checkpoint.save(out, 0, params=params, config=config, meta={**meta, "random_init_seed": seed})
  return out


def _pixels(data: str, checkpoint_dir: str) -> np.ndarray:
  """(N, S, S, 3) the images exactly as preprocessed for the checkpoint's network."""
  from lvm_jax import checkpoint
  from lvm_jax.data.pipeline import apply_preprocessing
  from lvm_jax.data.preprocess import Preprocessing
  from lvm_jax.export import sources
  meta = checkpoint.read_json(checkpoint_dir, "meta")
  prep = Preprocessing.from_dict(meta["preprocessing"])
  fast = bool(meta.get("fast_resize", False))
  source = sources.open_source(data)
  return np.stack([apply_preprocessing(prep, source.record(i)["image"], fast=fast)[0]
                   for i in range(len(source))])


def precision_at_k(embeddings: np.ndarray, labels: np.ndarray, k: int) -> float:
  """Through the search path: k nearest other rows by cosine, fraction sharing the label."""
  from lvm_jax.export import search
  _, index = search.cosine_knn(embeddings, embeddings, k + 1)
  # Drop each query's own row (exact duplicates aside, it is the first hit).
  own = index == np.arange(len(index))[:, None]
  rows = [idx[~o][:k] for idx, o in zip(index, own)]
  return float(np.mean(labels[np.stack(rows)] == labels[:, None]))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", required=True, help="pretrained checkpoint directory")
  parser.add_argument("--data", help="survey HDF5 file(s) (default: simulate one)")
  parser.add_argument("--n", type=int, default=2000, help="galaxies to simulate")
  parser.add_argument("--sim-seed", type=int, default=7, help="not the pretraining survey's")
  parser.add_argument("--k", type=int, default=10)
  parser.add_argument("--class-column", default="truth/class_id")
  parser.add_argument("--workdir", default="/tmp/neighbour_precision")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--out", help="JSON results (default WORKDIR/results.json)")
  args = parser.parse_args(argv)

  import jax
  from lvm_jax import provenance
  from lvm_jax.export import tables
  from lvm_jax.train import evaluators

  work = pathlib.Path(args.workdir)
  work.mkdir(parents=True, exist_ok=True)
  t0 = time.time()
  data = args.data
  if data is None:
    from lvm_jax.sim import write_survey
    sim_dir = work / f"survey_n{args.n}_seed{args.sim_seed}"
    if not list(sim_dir.glob("*.h5")):
      write_survey(sim_dir, args.n, seed=args.sim_seed)
    data = str(sorted(sim_dir.glob("*.h5"))[0])
  random_ckpt = _random_init_checkpoint(args.checkpoint, work / "random_init", seed=1000)

  from lvm_jax.export import schema
  column = schema.column_name(args.class_column)
  results = {}
  for name, ckpt in (("pretrained", args.checkpoint), ("random_init", str(random_ckpt))):
    out = work / f"export_{name}"
    _export(ckpt, data, out, args.class_column, args.batch)
    table = tables.read_embeddings(out)
    labels = np.asarray(table.column(column).to_numpy(), np.int64)
    emb = tables.numpy_column(table.column("embedding")).astype(np.float32)
    results[name] = {"precision": precision_at_k(emb, labels, args.k),
                     "knn_acc": evaluators.knn_accuracy(emb, labels, args.k), "dim": emb.shape[1]}
  pixels = _pixels(data, args.checkpoint)
  pca = evaluators.pca_features(pixels, results["pretrained"]["dim"]).astype(np.float32)
  results["pca_pixels"] = {"precision": precision_at_k(pca, labels, args.k),
                           "knn_acc": evaluators.knn_accuracy(pca, labels, args.k),
                           "dim": pca.shape[1]}
  prevalence = np.bincount(labels) / len(labels)
  results["chance_precision"] = float(np.sum(prevalence ** 2))
  report = provenance.provenance(
      benchmark="neighbour_precision", checkpoint=str(pathlib.Path(args.checkpoint).resolve()),
      data=str(data), n=int(len(labels)), k=args.k, device=jax.devices()[0].device_kind,
      results=results, seconds=round(time.time() - t0, 1))
  path = pathlib.Path(args.out or work / "results.json")
  path.write_text(json.dumps(report, indent=1, default=str))
  print(f"N = {len(labels)} held-out simulated galaxies, k = {args.k}, "
        f"device {jax.devices()[0].device_kind}")
  print(f"{'embedding':<12} {'dim':>4} {'precision@k':>12} {'k-NN acc':>9}")
  for name in ("pretrained", "random_init", "pca_pixels"):
    r = results[name]
    print(f"{name:<12} {r['dim']:>4} {r['precision']:>12.3f} {r['knn_acc']:>9.3f}")
  print(f"chance precision (sum of squared prevalences) {results['chance_precision']:.3f}")
  print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
