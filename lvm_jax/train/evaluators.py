"""Evaluators on the fixed held-out split, chosen by name in `config.eval.evaluators`.

* "reconstruction": MSE and PSNR of the reconstruction of the clean held-out images (normalised
  units), the same for the degraded input the task trains on, and two baselines: an identity
  model seen through a Gaussian blur (sigma `eval.blur_sigma_px`, what a network that only
  smooths would score) and, for a degrading task, the degraded input itself.
* "knn": k-NN (cosine, k = `eval.knn_k`, leave-one-out majority vote) accuracy of the
  embedding on the held-out class labels (the simulated survey's `truth/class_id`), beside a
  randomly initialised encoder and PCA of the pixels with as many components, the
  neighbours' class precision@k (`neighbour_precision`) and a 5-fold linear probe
  (`linear_probe_accuracy`, ridge classifier on standardised features) of the same three.

PSNR = 10 log10(peak² / MSE) per image, peak = the clean image's max - min; averaged over images.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from scipy import ndimage


def _psnr(mse: np.ndarray, peak: np.ndarray) -> np.ndarray:
  return 10.0 * np.log10(np.maximum(peak, 1e-12) ** 2 / np.maximum(mse, 1e-12))


def nearest_neighbours(features: np.ndarray, k: int) -> np.ndarray:
  """(N, k) indices of each row's k nearest other rows by centred cosine similarity.

  Centred: the mean feature vector is subtracted first (it says nothing about the class).
  The row itself is excluded; ties go to the lower index.
  """
  x = np.asarray(features, np.float64)
  x = x - x.mean(axis=0)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  sim = x @ x.T
  np.fill_diagonal(sim, -np.inf)
  return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
  """Leave-one-out k-NN accuracy with centred cosine similarity and majority vote.

  Rows with label < 0 are left out. Ties in the vote go to the nearer neighbours' class.
  """
  keep = labels >= 0
  y = np.asarray(labels)[keep]
  if len(y) <= k:
    return float("nan")
  votes = y[nearest_neighbours(np.asarray(features)[keep], k)]
  n_classes = int(y.max()) + 1
  weights = 1.0 + 1e-6 * (k - np.arange(k))[None, :]
  scores = np.zeros((len(y), n_classes))
  np.add.at(scores, (np.arange(len(y))[:, None], votes), weights)
  return float(np.mean(scores.argmax(axis=1) == y))


def neighbour_precision(features: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
  """Precision@k: the mean fraction of each row's k nearest other rows sharing its class.

  Rows with label < 0 are left out; a galaxy never counts as its own neighbour.
  """
  keep = labels >= 0
  y = np.asarray(labels)[keep]
  if len(y) <= k:
    return float("nan")
  return float(np.mean(y[nearest_neighbours(np.asarray(features)[keep], k)] == y[:, None]))


PROBE_ALPHA = 100.0  # ridge penalty on standardised features: a few hundred held-out rows
                     # against 256-768 features overfit at scikit-learn's default of 1


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 5,
                          alpha: float = PROBE_ALPHA) -> float:
  """Cross-validated accuracy of a linear probe: a ridge classifier on standardised features.

  Rows with label < 0 are left out. The rows are cut into `folds` contiguous folds; each fold
  is predicted by least squares onto the one-hot classes (ridge penalty `alpha`, intercept not
  penalised) fitted on the other folds, after standardising every feature with the training
  folds' mean and std. Equal to scikit-learn's RidgeClassifier on StandardScaler features with
  KFold(folds) (tested). Returns the fraction of rows predicted right.
  """
  keep = labels >= 0
  x = np.asarray(features, np.float64)[keep]
  y = np.asarray(labels)[keep]
  if len(y) < 2 * folds:
    return float("nan")
  classes = np.unique(y)
  bounds = np.linspace(0, len(y), folds + 1).astype(int)
  right = 0
  for lo, hi in zip(bounds[:-1], bounds[1:]):
    train = np.ones(len(y), bool)
    train[lo:hi] = False
    mean, std = x[train].mean(0), x[train].std(0)
    std = np.where(std > 0, std, 1.0)
    xt = (x[train] - mean) / std
    targets = np.where(y[train][:, None] == classes[None, :], 1.0, -1.0)
    t_mean = targets.mean(0)
    x_mean = xt.mean(0)
    xc = xt - x_mean
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (targets - t_mean))
    scores = ((x[lo:hi] - mean) / std - x_mean) @ w + t_mean
    right += int(np.sum(classes[scores.argmax(1)] == y[lo:hi]))
  return right / len(y)


def pca_features(images: np.ndarray, n_components: int) -> np.ndarray:
  flat = images.reshape(len(images), -1).astype(np.float64)
  flat = flat - flat.mean(axis=0)
  n_components = min(n_components, *flat.shape)
  _, _, vt = np.linalg.svd(flat, full_matrices=False)
  return flat @ vt[:n_components].T


class EvalContext:
  """What evaluators share: the model, task, mesh, param shardings, held-out arrays on device."""

  def __init__(self, model, task, mesh, param_shardings, batch_sharding, eval_set, batch_size,
               seed: int):
    self.model, self.task, self.mesh = model, task, mesh
    self.param_shardings = param_shardings
    self.batch_sharding = batch_sharding
    self.seed = seed
    images = eval_set["image"]
    self.labels = eval_set["label"]
    self.n = len(images)
    self.batch_size = int(batch_size)
    padded = -(-self.n // self.batch_size) * self.batch_size
    self.images = np.zeros((padded, *images.shape[1:]), np.float32)
    self.images[:self.n] = images
    self.valid = np.arange(padded) < self.n
    rep = NamedSharding(mesh, P())
    self._forward = jax.jit(self._forward_fn, in_shardings=(param_shardings, batch_sharding),
                            out_shardings=rep)
    self._gallery = None
    self._encode = jax.jit(self._encode_fn, in_shardings=(param_shardings, batch_sharding),
                           out_shardings=rep)

  def _global(self, x: np.ndarray) -> jax.Array:
    return jax.make_array_from_callback(x.shape, self.batch_sharding, lambda idx: x[idx])

  def _forward_fn(self, params, images):
    """Per-image MSE on clean and degraded input, and the degraded input's own MSE."""
    def mse(a, b):
      return jnp.mean(jnp.square(a - b).reshape(a.shape[0], -1), axis=1)
    clean = self.model.apply({"params": params}, images, train=False)["reconstruction"]
    degraded, _ = self.task.degrade(images, jax.random.key(self.seed + 1))
    recon_d = self.model.apply({"params": params}, degraded, train=False)["reconstruction"]
    return {"mse": mse(clean, images), "mse_degraded": mse(recon_d, images),
            "mse_degraded_input": mse(degraded, images)}

  def _encode_fn(self, params, images):
    return self.model.apply({"params": params}, images, train=False, method="encode")["embedding"]

  def batches(self):
    for start in range(0, len(self.images), self.batch_size):
      yield start, self._global(self.images[start:start + self.batch_size])

  def forward(self, params) -> dict[str, np.ndarray]:
    parts = [jax.device_get(self._forward(params, b)) for _, b in self.batches()]
    return {k: np.concatenate([p[k] for p in parts])[:self.n] for k in parts[0]}

  def embed(self, params) -> np.ndarray:
    parts = [np.asarray(jax.device_get(self._encode(params, b))) for _, b in self.batches()]
    return np.concatenate(parts)[:self.n]

  def reconstruct(self, params, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(degraded input, reconstruction) of a few images, on the default device."""
    rep = NamedSharding(self.mesh, P())
    if self._gallery is None:
      def fn(params, images):
        x, _ = self.task.degrade(images, jax.random.key(self.seed + 1))
        return x, self.model.apply({"params": params}, x, train=False)["reconstruction"]
      self._gallery = jax.jit(fn, in_shardings=(self.param_shardings, rep), out_shardings=rep)
    images = jax.make_array_from_callback(images.shape, rep, lambda idx: images[idx])
    x, out = jax.device_get(self._gallery(params, images))
    return np.asarray(x), np.asarray(out)


class ReconstructionEvaluator:
  name = "reconstruction"

  def __init__(self, ctx: EvalContext, eval_config):
    self.ctx = ctx
    images = ctx.images[:ctx.n]
    self.peak = images.reshape(ctx.n, -1).max(axis=1) - images.reshape(ctx.n, -1).min(axis=1)
    sigma = float(eval_config.blur_sigma_px)
    blurred = ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="reflect")
    self.blur_mse = np.mean(np.square(blurred - images).reshape(ctx.n, -1), axis=1)

  def __call__(self, params) -> dict[str, float]:
    out = self.ctx.forward(params)
    res = {"mse": float(out["mse"].mean()), "psnr": float(_psnr(out["mse"], self.peak).mean()),
           "baseline_blur_mse": float(self.blur_mse.mean()),
           "baseline_blur_psnr": float(_psnr(self.blur_mse, self.peak).mean())}
    if self.ctx.task.mask_fraction > 0 or self.ctx.task.noise_sigma > 0:
      res.update(mse_degraded=float(out["mse_degraded"].mean()),
                 baseline_degraded_input_mse=float(out["mse_degraded_input"].mean()))
    return res


class KnnEvaluator:
  name = "knn"

  def __init__(self, ctx: EvalContext, eval_config, random_params=None):
    self.ctx, self.k = ctx, int(eval_config.knn_k)
    self._baselines = None
    self._random_params = random_params

  def scores(self, features: np.ndarray, prefix: str) -> dict[str, float]:
    return {f"{prefix}acc": knn_accuracy(features, self.ctx.labels, self.k),
            f"{prefix}precision": neighbour_precision(features, self.ctx.labels, self.k),
            f"{prefix}probe_acc": linear_probe_accuracy(features, self.ctx.labels)}

  def baselines(self, dim: int) -> dict[str, float]:
    if self._baselines is None:
      out = self.scores(pca_features(self.ctx.images[:self.ctx.n], dim), "pca_")
      if self._random_params is not None:
        out.update(self.scores(self.ctx.embed(self._random_params()), "random_init_"))
      counts = np.bincount(self.ctx.labels[self.ctx.labels >= 0])
      out["majority_acc"] = float(counts.max() / counts.sum())
      self._baselines = out
    return self._baselines

  def __call__(self, params) -> dict[str, float]:
    emb = self.ctx.embed(params)
    res = self.scores(emb, "")
    res.update(self.baselines(emb.shape[1]))
    return res


def make_evaluators(names, ctx: EvalContext, eval_config,
                    random_params: Callable[[], Any] | None = None) -> dict[str, Callable]:
  out = {}
  for name in names:
    if name == "reconstruction":
      out[name] = ReconstructionEvaluator(ctx, eval_config)
    elif name == "knn":
      if (ctx.labels >= 0).sum() == 0:
        raise ValueError("the knn evaluator needs class labels (config.data.class_column)")
      out[name] = KnnEvaluator(ctx, eval_config, random_params)
    else:
      raise ValueError(f"unknown evaluator {name!r}; known: reconstruction, knn")
  return out
