"""The device-side input of training: per-process NumPy batches as global `jax.Array`s, prefetched.

`GlobalBatchIterator` wraps a `lvm_jax.data.pipeline.PretrainingPipeline` (or anything with
`iterate(start_step)`, `seed`, `global_batch_size`, `local_batch_size`, `process_index` and
`order.num_records`); batch k is a pure function of (seed, k), so the iterator resumes from a
step number and its state is a small JSON dict.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

STATE_VERSION = 1
_END = object()


class GlobalBatchIterator:
  """Per-process NumPy batches -> global `jax.Array`s sharded over the batch axis, prefetched.

  Each array of a batch becomes `jax.make_array_from_process_local_data` with
  `NamedSharding(mesh, PartitionSpec(data_axes))` and global leading size `global_batch_size`.
  A background thread keeps up to `prefetch` batches on device ahead of the caller (0: none).
  `get_state()` counts batches handed to the caller, not prefetched ones, so
  `set_state(get_state())` on a fresh iterator continues with the exact next batch.

  Args:
    pipeline: a `PretrainingPipeline` (anything with `iterate(start_step)`, `seed`,
      `global_batch_size`, `order.num_records`).
    mesh: the device mesh; data_axes: mesh axes the batch axis is split over.
    start_step: first batch to produce.
  """

  def __init__(self, pipeline: Any, mesh: jax.sharding.Mesh,
               data_axes: Sequence[str] = ("data",), prefetch: int = 2, start_step: int = 0):
    self.pipeline = pipeline
    self.sharding = NamedSharding(mesh, PartitionSpec(tuple(data_axes)))
    self.prefetch = int(prefetch)
    self._next_step = int(start_step)
    self._thread: threading.Thread | None = None
    self._stop = threading.Event()
    self._queue: queue.Queue = queue.Queue()
    self._local: Iterator | None = None
    self._check_rows()
    self._start(self._next_step)

  def _check_rows(self) -> None:
    """This process's devices must hold batch rows [p b, (p + 1) b), the rows its pipeline makes."""
    p, b = self.pipeline.process_index, self.pipeline.local_batch_size
    shape = (self.pipeline.global_batch_size,)
    rows = set()
    for index in self.sharding.addressable_devices_indices_map(shape).values():
      rows.update(range(*index[0].indices(shape[0])))
    if rows != set(range(p * b, (p + 1) * b)):
      raise ValueError(f"process {p}'s devices hold batch rows {min(rows)}..{max(rows)}, but its "
                       f"pipeline makes rows {p * b}..{(p + 1) * b - 1}: order the mesh's data "
                       f"axis by process (jax.make_mesh does) or pass matching process_index")

  def to_global(self, local_batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    """{name: (B, ...) jax.Array} from this process's {name: (B / P, ...)} arrays."""
    b = self.pipeline.global_batch_size
    return {k: jax.make_array_from_process_local_data(self.sharding, np.asarray(v),
                                                      (b, *np.shape(v)[1:]))
            for k, v in local_batch.items()}

  def _start(self, step: int) -> None:
    self._stop = threading.Event()
    self._local = self.pipeline.iterate(step)
    if self.prefetch <= 0:
      return
    self._queue = queue.Queue(maxsize=self.prefetch)
    self._thread = threading.Thread(target=self._produce, args=(self._local, self._stop,
                                                                self._queue), daemon=True)
    self._thread.start()

  def _produce(self, local: Iterator, stop: threading.Event, q: queue.Queue) -> None:
    def put(item) -> bool:
      while not stop.is_set():
        try:
          q.put(item, timeout=0.1)
          return True
        except queue.Full:
          continue
      return False

    try:
      for batch in local:
        if not put(self.to_global(batch)):
          return
      put(_END)
    except BaseException as e:  # handed to the caller's thread
      put(e)
    finally:
      close = getattr(local, "close", None)
      if close is not None:
        close()

  def __iter__(self) -> GlobalBatchIterator:
    return self

  def __next__(self) -> dict[str, jax.Array]:
    if self.prefetch <= 0:
      batch = self.to_global(next(self._local))
    else:
      item = self._queue.get()
      if item is _END:
        self._queue.put(_END)
        raise StopIteration
      if isinstance(item, BaseException):
        raise item
      batch = item
    self._next_step += 1
    return batch

  def get_state(self) -> dict[str, int]:
    """JSON-serialisable position: the next batch the caller will receive, and the order's key."""
    return {"version": STATE_VERSION, "next_batch": self._next_step,
            "seed": self.pipeline.seed, "global_batch_size": self.pipeline.global_batch_size,
            "num_records": self.pipeline.order.num_records}

  def set_state(self, state: Mapping[str, int]) -> None:
    """Continues from `state["next_batch"]`; the order's key must match this pipeline's."""
    mine = self.get_state()
    for key in ("seed", "global_batch_size", "num_records"):
      if int(state[key]) != mine[key]:
        raise ValueError(f"iterator state has {key}={state[key]}, this pipeline {mine[key]}")
    self.close()
    self._next_step = int(state["next_batch"])
    self._start(self._next_step)

  def close(self) -> None:
    """Stops the prefetch thread (and the pipeline's workers)."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    elif self._local is not None:
      close = getattr(self._local, "close", None)
      if close is not None:
        close()
    self._local = None

  def __enter__(self) -> GlobalBatchIterator:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
