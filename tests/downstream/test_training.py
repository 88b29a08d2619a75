"""One real training step of each downstream task, of a multitask run, frozen vs fine-tuned."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from lvm_jax.downstream import definitions, multitask, network, training

S = 32


def _data(n=16, seed=0):
  rng = np.random.default_rng(seed)
  image = rng.normal(size=(n, S, S, 3)).astype(np.float32)
  return {"image": image, "degraded": image + 0.3 * rng.normal(size=image.shape).astype(np.float32),
          "label": rng.integers(0, 4, n), "params": rng.normal(size=(n, 6)).astype(np.float32)}


def _task(kind, mutable=()):
  extra = {"num_classes": 4} if kind == "classification" else {}
  if kind in ("restoration", "inpainting"):
    extra["decoder_width"] = 8
  if kind == "inpainting":
    extra["patch_sizes"] = (4, 8)
  if kind == "restoration":
    extra["flux_weight"] = 1.0
  return definitions.make_task(kind, image_size=S, mutable=mutable, **extra)


def _changed(a, b):
  return any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("kind", ["classification", "restoration", "inpainting", "parameters"])
def test_one_step_of_each_task_fine_tuned(kind, small_lvm_config, opt_config):
  task = _task(kind)
  net = network.Network(network.make_backbone("lvm", small_lvm_config), {task.name: task.head()})
  # the backbone committed to a device (as a restored checkpoint gives it), the head not
  variables = task.init_variables(net, 0)
  variables = {**variables, "params": {
      **variables["params"],
      "backbone": jax.device_put(jax.tree.map(np.asarray, variables["params"]["backbone"]),
                                 jax.devices()[0])}}
  trainer = training.Trainer(net, task, opt_config, steps=2, batch_size=4)
  new, log = trainer.run(variables, _data(), seed=0, log_every=1)
  assert len(log) == 2 and all(np.isfinite(r["loss"]) for r in log)
  assert trainer._step._cache_size() == 1  # the second step reuses the first one's compile
  assert _changed(variables["params"]["backbone"], new["params"]["backbone"])
  assert _changed(variables["params"][f"heads_{task.name}"], new["params"][f"heads_{task.name}"])


def test_frozen_encoder_only_heads_learn(small_lvm_config, opt_config):
  task = _task("classification")
  net = network.Network(network.make_backbone("lvm", small_lvm_config), {task.name: task.head()},
                        freeze_backbone=True)
  variables = task.init_variables(net, 0)
  trainer = training.Trainer(net, task, opt_config, steps=3, batch_size=4, frozen=True)
  new, _ = trainer.run(variables, _data(), seed=0)
  jax.tree.map(np.testing.assert_array_equal, variables["params"]["backbone"],
               new["params"]["backbone"])
  assert _changed(variables["params"]["heads_classification"],
                  new["params"]["heads_classification"])


def test_resnet_backbone_updates_batch_stats(opt_config):
  task = _task("parameters", mutable=("batch_stats",))
  net = network.Network(network.make_backbone("resnet18", width=8), {task.name: task.head()})
  variables = task.init_variables(net, 0)
  assert "batch_stats" in variables
  new, log = training.Trainer(net, task, opt_config, steps=2, batch_size=4).run(
      variables, _data(), seed=1, log_every=2)
  assert _changed(variables["batch_stats"], new["batch_stats"])
  assert np.isfinite(log[-1]["loss"])


def test_multitask_step_reports_each_task_and_active_shares_move(small_lvm_config, opt_config):
  tasks = tuple(_task(k) for k in ("classification", "restoration", "inpainting", "parameters"))
  # inpainting's head takes [fill, mask] (4 channels) beside restoration's 3-channel one
  tasks = (*tasks[:2], dataclasses.replace(tasks[2], mask_channel=True, full_res_convs=2,
                                           fill_sigmas_px=(2.0,)), tasks[3])
  mt = multitask.MultiTask(tasks, image_size=S)
  net = network.Network(network.make_backbone("lvm", small_lvm_config),
                        {t.name: t.head() for t in tasks})
  variables = mt.init_variables(net, 0)
  trainer = training.Trainer(net, mt, opt_config, steps=2, batch_size=4)
  data = _data()
  # A fake held-out measure in which only the first task improves: the others lag.
  calls = []

  def heldout(v):
    calls.append(1)
    return [1.0 / len(calls), 1.0, 1.0, 1.0]

  shares = multitask.ActiveShares(mt.names)
  new, log = trainer.run(variables, data, seed=0, shares=shares, heldout=heldout, share_every=1,
                         log_every=1)
  for name in mt.names:
    assert np.isfinite(log[-1][f"{name}/loss"])
  inp = new["params"]["heads_inpainting"]
  assert inp["conv_full"]["kernel"].shape[2] == 8 + 4 and "conv_full1" in inp
  assert new["params"]["heads_restoration"]["conv_full"]["kernel"].shape[2] == 8 + 3
  assert len(shares.history) == 3
  last = shares.history[-1]["shares"]
  assert last["classification"] < 0.25 < last["restoration"]
  assert _changed(variables["params"]["backbone"], new["params"]["backbone"])


def test_active_shares_favour_the_lagging_task():
  s = multitask.ActiveShares(["a", "b"])
  s.update(0, [2.0, 1.0])
  assert np.allclose(s.shares, 0.5)
  shares_b = []
  for step, (la, lb) in enumerate([(1.5, 0.9), (1.0, 0.9), (0.6, 0.9)], start=1):
    s.update(step, [la, lb])
    shares_b.append(s.shares[1])
  assert np.all(np.diff(shares_b) > 0) and shares_b[-1] > 0.5  # b lags more and more


def test_active_shares_compare_log_losses_by_difference():
  """Log losses (cross-entropy, Gaussian NLL, log MSE) can be negative: their progress is
  exp(l - l0), so a log task that lags gains share, whatever the sign of its loss."""
  s = multitask.ActiveShares(["ce", "log_mse", "mse"], log_losses=[True, True, False])
  s.update(0, [2.0, -5.0, 0.01])
  s.update(1, [1.0, -5.0 + np.log(0.9), 0.005])  # ratios exp(-1), 0.9, 0.5
  np.testing.assert_allclose(
      multitask.progress_ratios([1.0, -5.0 + np.log(0.9), 0.005], [2.0, -5.0, 0.01],
                                [True, True, False]), [np.exp(-1.0), 0.9, 0.5])
  assert s.shares[1] > s.shares[2] > s.shares[0]  # the log-MSE task lags most
  plain = multitask.ActiveShares(["a", "b"])  # a negative loss not marked as a log loss
  plain.update(0, [1.0, 1.0])
  with pytest.raises(ValueError, match="log_losses"):
    plain.update(1, [-1.0, 1.0])
  tasks = [definitions.make_task(k) for k in ("classification", "parameters")]
  assert all(t.log_loss for t in tasks)
  assert definitions.make_task("inpainting", pixel_loss="log_mse").log_loss
  assert not definitions.make_task("restoration", pixel_loss="mse").log_loss
  assert s.shares.sum() == pytest.approx(1.0)
  assert s.shares.min() >= s.floor / 2 - 1e-12
  equal = multitask.active_shares([0.7, 0.7, 0.7])
  np.testing.assert_allclose(equal, 1 / 3)


def test_lvm_decoder_head_starts_as_the_pretrained_model_and_fine_tunes(small_lvm_config,
                                                                         opt_config):
  """Restoration and inpainting on the pretrained LVM decoder (`tasks.image_head` "lvm"), and the
  residual variant (`lvm_residual`), all heads of one network (one init compile)."""
  from lvm_jax import models
  sunet = models.build(small_lvm_config)
  x = _data(4)["image"]
  pretrained = models.init_params(sunet, 7)
  tasks = tuple(definitions.make_task(k, image_size=S, lvm_decoder=models.build(small_lvm_config),
                                      lvm_residual=False,
                                      **({"patch_sizes": (4,)} if k == "inpainting" else {}))
                for k in ("restoration", "inpainting"))
  res = definitions.make_task("restoration", image_size=S, lvm_residual=True,
                              lvm_decoder=models.build(small_lvm_config))
  net = network.Network(network.make_backbone("lvm", small_lvm_config),
                        {**{t.name: t.head() for t in tasks}, "residual": res.head()})
  fresh = tasks[0].init_variables(net, 0)
  variables = network.load_lvm_pretrained(fresh, pretrained)
  apply = jax.jit(net.apply, static_argnums=2)
  expected = sunet.apply({"params": pretrained}, x)["reconstruction"]
  for t in tasks:  # before training each head is the pretrained encoder-decoder
    np.testing.assert_allclose(apply(variables, x, t.name), expected, atol=1e-6)
    assert not np.allclose(apply(fresh, x, t.name), expected, atol=1e-3)
  new, log = training.Trainer(net, tasks[0], opt_config, steps=2, batch_size=4).run(
      variables, _data(), seed=0, log_every=1)
  assert np.isfinite(log[-1]["loss"])
  assert _changed(variables["params"]["heads_restoration"]["sunet"],
                  new["params"]["heads_restoration"]["sunet"])
  # Residual (`lvm_residual`): input + a zero-initialised correction from [decoder output, input],
  # so training starts from the input itself; the decoder's leaves are still the pretrained ones.
  np.testing.assert_allclose(apply(variables, x, "residual"), x, atol=1e-6)
  jax.tree.map(np.testing.assert_array_equal, variables["params"]["heads_residual"]["sunet"],
               variables["params"]["heads_restoration"]["sunet"])
  # A decoder that does not match the checkpoint is refused, naming the head.
  other = dict(pretrained, low_conv={"kernel": np.zeros((1, 1, 16, 5), np.float32),
                                     "bias": np.zeros(5, np.float32)})
  with pytest.raises(ValueError, match="decoder of heads_"):
    network.load_lvm_pretrained(fresh, other)


def test_lvm_decoder_head_needs_an_lvm_backbone(small_lvm_config):
  from lvm_jax import models
  task = definitions.make_task("restoration", image_size=S,
                               lvm_decoder=models.build(small_lvm_config))
  net = network.Network(network.make_backbone("resnet18", width=8), {task.name: task.head()})
  with pytest.raises(ValueError, match="LVM backbone"):
    task.init_variables(net, 0)
