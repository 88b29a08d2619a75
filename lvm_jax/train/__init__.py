"""lvm_jax.train."""
