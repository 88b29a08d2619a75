"""lvm_jax.hitl: human-in-the-loop search over frozen galaxy embeddings (Fu et al. 2024).

A `Session` trains a one-hidden-layer MLP on a few labels each round and recommends the next
objects to label; labels live in an append-only SQLite log (`LabelStore`).
"""

from lvm_jax.hitl.catalogue import EmbeddingCatalogue, load_catalogue
from lvm_jax.hitl.labels import consensus_labels, normalise_label, user_labels
from lvm_jax.hitl.metrics import (audit_estimates, average_precision, discovery_curve,
                                  purity_completeness, roc_auc, wilson_interval)
from lvm_jax.hitl.model import TRACE_COUNTS, ScoreMLP, bucket_size
from lvm_jax.hitl.session import Session
from lvm_jax.hitl.store import LabelStore
from lvm_jax.hitl.strategies import (STRATEGIES, SelectionContext, farthest_point, get_strategy,
                                     paper_rule, register_strategy)

__all__ = [
    "EmbeddingCatalogue", "LabelStore", "STRATEGIES", "ScoreMLP", "SelectionContext", "Session",
    "TRACE_COUNTS", "audit_estimates", "average_precision", "bucket_size", "consensus_labels",
    "discovery_curve", "farthest_point", "get_strategy", "load_catalogue", "normalise_label",
    "paper_rule", "purity_completeness", "register_strategy", "roc_auc", "user_labels",
    "wilson_interval",
]
