"""lvm_jax.convert."""
