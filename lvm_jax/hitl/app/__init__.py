"""lvm_jax.hitl.app: a Panel web app over the HITL `Session` (`lvm-jax hitl`).

    lvm-jax hitl --embeddings OUT --images survey.h5 --store lenses.sqlite

One server holds the catalogue, the image source and the PCA map (`AppData`, loaded once);
each browser session builds its own `AppState` (a `Session` over the shared label store) and
its own widgets (`ui.build_app`). The app drives the same `Session` core as the notebook API,
so the same store and seed give the same recommendations.
"""

from lvm_jax.hitl.app.data import AppConfig, AppData
from lvm_jax.hitl.app.state import AppState

__all__ = ["AppConfig", "AppData", "AppState"]
