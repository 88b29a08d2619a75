"""lvm_jax.downstream."""
