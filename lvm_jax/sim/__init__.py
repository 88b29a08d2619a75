"""lvm_jax.sim."""
