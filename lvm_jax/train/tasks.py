"""Moved to `lvm_jax.train.objectives` (pretraining objectives); this name stays for one release."""

from __future__ import annotations

import sys

from lvm_jax.train import objectives as _objectives

sys.modules[__name__] = _objectives
