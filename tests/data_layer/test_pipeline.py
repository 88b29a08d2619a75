"""The pretraining pipeline: process-invariant global batches, resumption, determinism, bad data."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from lvm_jax.data import preprocess
from lvm_jax.data.hdf5_source import SslLegacySurveySource, write_ssl_hdf5
from lvm_jax.data.pipeline import GlobalBatchIterator, fast_resize, make_pipeline
from lvm_jax.data.validate import BadImageError, Quarantine

N_RECORDS = 40
STAMP = 152
PREP = preprocess.Preprocessing(mode="resize", out_size=32, normalisation="asinh")
BAD_INDEX = 7  # a NaN pixel in the `bad` file


def _catalogue(n: int, offset: int = 0) -> dict:
  return {"ra": np.linspace(10, 11, n), "dec": np.linspace(-1, 1, n),
          "release": np.full(n, 9010), "brickid": np.full(n, 1), "objid": np.arange(n) + offset}


@pytest.fixture(scope="session")
def ssl_files(tmp_path_factory):
  """Two files of 20 random positive 152-px stamps: `good` and `bad` (NaN at BAD_INDEX)."""
  d = tmp_path_factory.mktemp("ssl")
  rng = np.random.default_rng(0)
  images = rng.uniform(0.001, 1.0, size=(N_RECORDS, 3, STAMP, STAMP)).astype(np.float32)
  half = N_RECORDS // 2
  good = [write_ssl_hdf5(d / "a.h5", images[:half], _catalogue(half)),
          write_ssl_hdf5(d / "b.h5", images[half:], _catalogue(half, half))]
  bad_images = images[:half].copy()
  bad_images[BAD_INDEX, 1, 5, 5] = np.nan
  bad = write_ssl_hdf5(d / "bad.h5", bad_images, _catalogue(half))
  return {"good": good, "bad": bad}


@pytest.fixture(scope="session")
def source(ssl_files):
  return SslLegacySurveySource(ssl_files["good"])


def _pipeline(source, **kwargs):
  kwargs = {"preprocessing": PREP, "global_batch_size": 8, "seed": 3, "process_index": 0,
            "process_count": 1, **kwargs}
  return make_pipeline(source, **kwargs)


def _assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_fast_resize_matches_skimage():
  rng = np.random.default_rng(1)
  for size in (152, 100, 20):  # down- and up-sampling
    image = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    np.testing.assert_allclose(fast_resize(image, 64), preprocess.resize_image(image, 64),
                               atol=1e-6)


def test_batches_cover_each_epoch_once_and_epochs_differ(source):
  pipe = _pipeline(source, num_epochs=2, augment=False)
  assert len(pipe) == 2 * (N_RECORDS // 8)
  epochs = [np.concatenate([pipe[k]["index"] for k in range(e * 5, e * 5 + 5)]) for e in (0, 1)]
  assert sorted(epochs[0]) == list(range(N_RECORDS))
  assert not np.array_equal(epochs[0], epochs[1])
  batch = pipe[0]
  assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.float32
  assert batch["valid"].all()
  # Without augmentation a row is the preprocessed record.
  expected, _ = PREP.apply(source[int(batch["index"][2])]["image"])
  np.testing.assert_allclose(batch["image"][2], expected, atol=1e-5)


def test_global_batch_is_independent_of_process_count(source):
  one = _pipeline(source, global_batch_size=16)
  two = [_pipeline(source, global_batch_size=16, process_index=p, process_count=2)
         for p in (0, 1)]
  assert two[0].local_batch_size == 8
  mesh = jax.make_mesh((8,), ("data",))
  for step in (0, 1, 4):  # 4 is in the second epoch
    whole = one[step]
    parts = [pipe[step] for pipe in two]
    joined = {k: np.concatenate([p[k] for p in parts]) for k in whole}
    _assert_batches_equal(whole, joined)
  it = GlobalBatchIterator(one, mesh, prefetch=0)
  arrays = next(it)
  assert arrays["image"].shape == (16, 32, 32, 3)
  assert len(arrays["image"].sharding.device_set) == 8
  assert arrays["image"].addressable_shards[0].data.shape == (2, 32, 32, 3)
  np.testing.assert_array_equal(np.asarray(arrays["image"]), one[0]["image"])
  it.close()


def test_resumed_iterator_continues_with_the_next_batch(source):
  mesh = jax.make_mesh((8,), ("data",))
  pipe = _pipeline(source)
  with GlobalBatchIterator(pipe, mesh, prefetch=2) as it:
    uninterrupted = [jax.device_get(next(it)) for _ in range(4)]
  with GlobalBatchIterator(pipe, mesh, prefetch=2) as it:
    for _ in range(3):
      next(it)
    state = json.loads(json.dumps(it.get_state()))
  assert state["next_batch"] == 3
  fresh = _pipeline(source)
  with GlobalBatchIterator(fresh, mesh, prefetch=2) as it:
    it.set_state(state)
    _assert_batches_equal(jax.device_get(next(it)), uninterrupted[3])
  other_seed = _pipeline(source, seed=4)
  with GlobalBatchIterator(other_seed, mesh, prefetch=0) as it:
    with pytest.raises(ValueError, match="seed"):
      it.set_state(state)


def test_augmentation_is_seeded_by_record_not_worker(source):
  a, b = _pipeline(source), _pipeline(source)
  _assert_batches_equal(a[2], b[2])
  assert (a[0]["dihedral"] >= 0).all()
  c = _pipeline(source, seed=5)
  assert not np.array_equal(c[0]["image"], a[0]["image"])
  # A record gets the same pixels wherever it lands (shuffled vs source order, same epoch).
  ordered = _pipeline(source, shuffle=False)
  step, row = next((k, int(np.flatnonzero(a[k]["index"] == 0)[0])) for k in range(5)
                   if (a[k]["index"] == 0).any())
  np.testing.assert_array_equal(a[step]["image"][row], ordered[0]["image"][0])


def test_worker_processes_give_the_same_pixels(source):
  """Two Grain worker processes vs none: identical batches (slow-ish: spawns 2 processes)."""
  in_process = list(_pipeline(source, num_epochs=1).iterate(1))
  workers = list(_pipeline(source, num_epochs=1, worker_count=2).iterate(1))
  assert len(workers) == len(in_process) == N_RECORDS // 8 - 1
  for x, y in zip(in_process, workers):
    _assert_batches_equal(x, y)


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_equal_step_counts_with_uneven_records(source, drop_remainder):
  pipes = [_pipeline(source, global_batch_size=16, num_epochs=1, process_index=p,
                     process_count=2, drop_remainder=drop_remainder) for p in (0, 1)]
  steps = [len(list(p.iterate())) for p in pipes]
  assert steps[0] == steps[1] == (2 if drop_remainder else 3)
  summary = pipes[0].summary()
  assert summary["dropped_per_epoch"] == (8 if drop_remainder else 0)
  assert summary["padded_per_epoch"] == (0 if drop_remainder else 8)
  if not drop_remainder:
    last = [p[2] for p in pipes]
    assert last[0]["valid"].all() and not last[1]["valid"].any()
    assert (last[1]["index"] == -1).all()


def test_bad_image_is_masked_and_quarantined(ssl_files):
  source = SslLegacySurveySource(ssl_files["bad"])
  quarantine = Quarantine()
  pipe = _pipeline(source, shuffle=False, quarantine=quarantine, num_epochs=1)
  batches = list(pipe.iterate())
  valid = np.concatenate([b["valid"] for b in batches])
  index = np.concatenate([b["index"] for b in batches])
  assert index[~valid].tolist() == [BAD_INDEX]
  assert len(quarantine) == 1
  row = quarantine.rows[0]
  assert row["reason"] == "nonfinite" and row["source_index"] == BAD_INDEX
  assert row["source_file"].endswith("bad.h5")
  assert not batches[0]["image"][BAD_INDEX].any()


def test_bad_image_without_quarantine_raises_naming_file_and_index(ssl_files):
  pipe = _pipeline(SslLegacySurveySource(ssl_files["bad"]), shuffle=False)
  message = rf"bad\.h5 \[index {BAD_INDEX}\].*global record {BAD_INDEX}"
  with pytest.raises(BadImageError, match=message):
    pipe[0]


def test_plainly_valid_never_passes_a_bad_image():
  from lvm_jax.data.pipeline import plainly_valid
  from lvm_jax.data.validate import validate_image
  good = np.random.default_rng(0).uniform(0, 1, (16, 16, 3)).astype(np.float32)
  assert plainly_valid(good)
  cases = [np.zeros_like(good), np.ones_like(good), good[..., :2]]
  for value in (np.nan, np.inf, -np.inf):
    bad = good.copy()
    bad[3, 4, 1] = value
    cases.append(bad)
  constant_band = good.copy()
  constant_band[..., 2] = 0.5
  cases.append(constant_band)
  for bad in cases:
    assert not plainly_valid(bad)
    with pytest.raises(BadImageError):
      validate_image(bad)


def test_iterator_refuses_rows_its_devices_do_not_hold(source):
  second_half = _pipeline(source, global_batch_size=16, process_index=1, process_count=2)
  with pytest.raises(ValueError, match="rows 8..15"):
    GlobalBatchIterator(second_half, jax.make_mesh((8,), ("data",)), prefetch=0)


def test_iterator_stops_at_the_end_of_a_finite_pipeline(source):
  pipe = _pipeline(source, num_epochs=1)
  with GlobalBatchIterator(pipe, jax.make_mesh((8,), ("data",)), prefetch=2) as it:
    assert len(list(it)) == N_RECORDS // 8
    assert it.get_state()["next_batch"] == N_RECORDS // 8
    with pytest.raises(StopIteration):
      next(it)
