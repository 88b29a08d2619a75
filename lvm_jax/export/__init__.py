"""lvm_jax.export."""
