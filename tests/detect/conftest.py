"""Session fixtures of the detection tests: a few small simulated fields and their file."""

from __future__ import annotations

import pytest

from lvm_jax.detect import fields

SPEC = fields.FieldSpec(size=160, lenses=(1, 2), mean_targets=3.0, impostor_fraction=0.3)


@pytest.fixture(scope="session")
def small_spec():
  return SPEC


@pytest.fixture(scope="session")
def small_fields():
  return [fields.simulate_field(7, i, SPEC) for i in range(3)]


@pytest.fixture(scope="session")
def field_file(small_fields, tmp_path_factory):
  path = tmp_path_factory.mktemp("fields") / "fields.h5"
  return fields.write_fields(path, small_fields, seed=7, spec=SPEC.to_dict())


@pytest.fixture(scope="session")
def tiny_prep():
  from lvm_jax.data import preprocess
  return preprocess.Preprocessing(mode="fixed", out_size=64, normalisation="asinh", crop_size=96)
