"""Weight-decay mask, schedule, config loading and the k-NN metric on hand-made inputs."""

import jax
import numpy as np
import optax
import pytest
from flax import traverse_util

from lvm_jax import models
from lvm_jax import config as config_lib
from lvm_jax.train import evaluators, objectives, optimizer


def test_decay_mask_excludes_norms_biases_tables_and_prelu():
  abstract = models.abstract_params(models.build(models.preset("tiny")))
  mask = traverse_util.flatten_dict(optimizer.decay_mask(abstract))
  decayed = {p[-1] for p, m in mask.items() if m}
  kept = {p[-1] for p, m in mask.items() if not m}
  assert decayed == {"kernel"}
  assert {"scale", "bias", "relative_position_bias_table", "prelu"} <= kept
  assert mask[("conv_first", "kernel")] and mask[("layers_0", "blocks_0", "attn", "qkv", "kernel")]
  assert not mask[("layers_0", "blocks_0", "norm1", "scale")]


def test_adamw_decays_only_kernels():
  params = {"dense": {"kernel": np.ones((2, 2), np.float32), "bias": np.ones(2, np.float32)},
            "attn": {"relative_position_bias_table": np.ones((9, 1), np.float32)}}
  cfg = config_lib.load_config("pretrain:tiny").optimizer
  cfg.warmup_steps, cfg.lr, cfg.weight_decay, cfg.grad_clip = 0, 0.1, 0.5, 0.0
  tx, schedule = optimizer.make_optimizer(cfg, 10)
  zeros = jax.tree.map(np.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  lr0 = float(schedule(0))
  np.testing.assert_allclose(updates["dense"]["kernel"], -lr0 * 0.5, rtol=1e-6)
  np.testing.assert_array_equal(updates["dense"]["bias"], 0)
  np.testing.assert_array_equal(updates["attn"]["relative_position_bias_table"], 0)


def test_schedule_warmup_then_cosine():
  cfg = config_lib.load_config("pretrain:lvm_100m").optimizer
  cfg.warmup_steps = 10
  schedule = optimizer.learning_rate_schedule(cfg, 110)
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(float(schedule(10)), cfg.lr, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(110)), cfg.lr * cfg.end_lr_factor, rtol=1e-5)


def test_overrides_parse_against_the_config():
  config = config_lib.load_config("pretrain:tiny")
  config_lib.apply_overrides(config, ["config.model.depths=[1,1,1,1]", "batch_size=16",
                                      "optimizer.lr=1", "log.progress=false",
                                      "data.files=/x/*.h5"])
  assert list(config.model.depths) == [1, 1, 1, 1] and config.batch_size == 16
  assert config.optimizer.lr == 1.0 and config.log.progress is False
  assert config.data.files == "/x/*.h5"
  with pytest.raises(KeyError):
    config_lib.apply_overrides(config, ["optimizer.nope=1"])
  rest, over = config_lib.split_config_args(["--workdir", "w", "--config.a=1", "--config.b",
                                                 "2"])
  assert rest == ["--workdir", "w"] and over == ["config.a=1", "config.b=2"]


def test_knn_accuracy_by_hand():
  # Two tight clusters of 12 points: every leave-one-out vote is right.
  rng = np.random.default_rng(0)
  a = np.array([1.0, 0.0]) + 0.01 * rng.standard_normal((12, 2))
  b = np.array([-1.0, 0.2]) + 0.01 * rng.standard_normal((12, 2))
  x = np.concatenate([a, b])
  y = np.array([0] * 12 + [1] * 12)
  assert evaluators.knn_accuracy(x, y, k=10) == 1.0
  # Labels shuffled against the features: a 2-class vote on 10 neighbours of one cluster gives
  # the cluster's majority label, so accuracy is exactly the fraction holding it.
  y2 = np.array([0] * 9 + [1] * 3 + [1] * 9 + [0] * 3)
  assert evaluators.knn_accuracy(x, y2, k=10) == pytest.approx(18 / 24)


def test_neighbour_precision_by_hand():
  # Two tight clusters of 12: the 10 nearest other points of each lie in its own cluster
  # (11 candidates), so precision@10 counts same-label points among them.
  rng = np.random.default_rng(1)
  x = np.concatenate([np.array([1.0, 0.0]) + 0.01 * rng.standard_normal((12, 2)),
                      np.array([-1.0, 0.2]) + 0.01 * rng.standard_normal((12, 2))])
  y = np.array([0] * 12 + [1] * 12)
  assert evaluators.neighbour_precision(x, y, k=10) == 1.0
  # With k = 11 every point sees its whole cluster (self excluded): 11/11 of its class.
  assert evaluators.neighbour_precision(x, y, k=11) == 1.0
  # k = 12 reaches one point of the other cluster for everybody.
  assert evaluators.neighbour_precision(x, y, k=12) == pytest.approx(11 / 12)
  # Unlabelled rows (-1) are left out of queries and neighbours alike.
  y3 = y.copy()
  y3[:2] = -1
  assert evaluators.neighbour_precision(x, y3, k=9) == 1.0
  nn = evaluators.nearest_neighbours(x, 3)
  assert not (nn == np.arange(len(x))[:, None]).any()


def test_linear_probe_matches_scikit_learn_ridge_classifier():
  from sklearn.linear_model import RidgeClassifier
  from sklearn.model_selection import KFold, cross_val_predict
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler
  rng = np.random.default_rng(0)
  x = rng.normal(size=(150, 12)) * rng.uniform(0.1, 10, 12)   # unequal feature scales
  y = np.argmax(x[:, :3] / x[:, :3].std(0), axis=1)   # 3 classes, linearly separable
  for alpha in (0.1, 10.0):
    pred = cross_val_predict(make_pipeline(StandardScaler(), RidgeClassifier(alpha=alpha)), x, y,
                             cv=KFold(5))
    assert evaluators.linear_probe_accuracy(x, y, alpha=alpha) == pytest.approx(np.mean(pred == y))
  # Informative features are probed well above chance; pure noise is not; unlabelled rows
  # (label < 0) are left out.
  assert evaluators.linear_probe_accuracy(x, y, alpha=1.0) > 0.8
  assert evaluators.linear_probe_accuracy(rng.normal(size=(150, 12)), y, alpha=1.0) < 0.6
  y_masked = y.copy()
  y_masked[::3] = -1
  keep = y_masked >= 0
  assert evaluators.linear_probe_accuracy(x, y_masked) == pytest.approx(
      evaluators.linear_probe_accuracy(x[keep], y[keep]))


def test_patch_mask_counts():
  m = objectives.random_patch_mask(jax.random.key(0), 3, 32, 8, 0.5)
  assert m.shape == (3, 32, 32)
  cells = np.asarray(m)[:, ::8, ::8]
  assert (cells.reshape(3, -1).sum(axis=1) == 8).all()
  # Whole cells: every pixel of a cell shares its value.
  assert (np.asarray(m) == np.repeat(np.repeat(cells, 8, 1), 8, 2)).all()


def test_skip_drop_reconstructs_from_the_bottleneck_alone(tiny):
  _, module, params = tiny
  x = jax.random.normal(jax.random.key(3), (2, 64, 64, 3))
  batch = {"image": x, "valid": np.ones(2, bool)}
  rng = jax.random.key(0)

  def loss(task):
    return jax.jit(lambda p: task.loss_fn(module, {"params": p}, batch, rng)[0])(params)

  def mse(skip_keep):
    out = jax.jit(lambda p: module.apply({"params": p}, x, skip_keep=skip_keep))(params)
    return float(np.mean(np.square(np.asarray(out["reconstruction"]) - np.asarray(x))))

  np.testing.assert_allclose(loss(objectives.ReconstructionTask(skip_drop=1.0)), mse(np.zeros(2)),
                             rtol=1e-5)
  np.testing.assert_allclose(loss(objectives.ReconstructionTask()), mse(None), rtol=1e-5)
  assert abs(mse(np.zeros(2)) - mse(None)) > 1e-4
