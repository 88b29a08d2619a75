"""Moved to `lvm_jax.export.reconstruct`; this name stays for one release."""

from __future__ import annotations

import sys

from lvm_jax.export import reconstruct as _reconstruct

sys.modules[__name__] = _reconstruct
