"""lvm_jax.tasks."""
