"""lvm_jax.data."""
