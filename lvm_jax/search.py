"""Moved to `lvm_jax.export.search`; this name stays for one release."""

from __future__ import annotations

import sys

from lvm_jax.export import search as _search

sys.modules[__name__] = _search
