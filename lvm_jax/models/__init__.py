"""lvm_jax.models."""
