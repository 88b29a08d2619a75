"""`lvm-jax` sub-commands of lvm_jax.sim."""


def register(subparsers) -> None:
  del subparsers  # Sub-commands are added here as they land.
