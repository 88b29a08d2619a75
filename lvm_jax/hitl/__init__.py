"""lvm_jax.hitl."""
