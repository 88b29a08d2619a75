"""lvm_jax.hitl: human-in-the-loop search over frozen galaxy embeddings (Fu et al. 2024).

A `Session` trains a one-hidden-layer MLP on a few labels each round and recommends the next
objects to label; labels live in an append-only SQLite log (`LabelStore`).

Names are imported on first use (PEP 562), so `lvm_jax.hitl.commands` (the `lvm-jax hitl`
sub-command) can be imported by `lvm-jax --help` without importing jax.
"""

import importlib

_EXPORTS = {
    "lvm_jax.hitl.catalogue": ("EmbeddingCatalogue", "load_catalogue"),
    "lvm_jax.hitl.labels": ("consensus_labels", "normalise_label", "user_labels"),
    "lvm_jax.hitl.metrics": ("audit_estimates", "average_precision", "discovery_curve",
                             "purity_completeness", "roc_auc", "wilson_interval"),
    "lvm_jax.hitl.model": ("TRACE_COUNTS", "ScoreMLP", "bucket_size"),
    "lvm_jax.hitl.session": ("Session",),
    "lvm_jax.hitl.store": ("LabelStore",),
    "lvm_jax.hitl.strategies": ("STRATEGIES", "SelectionContext", "farthest_point",
                                "get_strategy", "paper_rule", "register_strategy"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
  if name not in _MODULE_OF:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  value = getattr(importlib.import_module(_MODULE_OF[name]), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
