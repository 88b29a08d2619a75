"""Moved to `lvm_jax.config`; this name stays for one release."""

from __future__ import annotations

import sys

from lvm_jax import config as _config

sys.modules[__name__] = _config
