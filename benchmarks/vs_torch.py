"""lvm-jax against a PyTorch SUNet, in one process, alternating rounds.

    python benchmarks/vs_torch.py                          # tiny@16 (64 px), lvm_100m@4 (128 px)
    python benchmarks/vs_torch.py --configs tiny:16 --rounds 7
    python benchmarks/vs_torch.py --configs tiny:4 --rounds 2 --steps 1   # a smoke run

Both frameworks get the same weights (lvm-jax's initial parameters, exported to PyTorch with
`lvm_jax.convert.params_to_torch`), the same batch of random positive images, float32, the same
number of threads (`--threads`, default 2: `torch.set_num_threads` and XLA's CPU thread pool),
and the same work:
  forward     reconstruction, no gradients (torch: `inference_mode`)
  encode      encoder only, the mean-pooled bottleneck embedding (what `lvm-jax export` runs)
  train       forward, MSE against the input, backward, Adam step (lr 1e-4); eval-mode network
              (no dropout or stochastic depth in either), jax with donated state
Before timing, the two forward passes are compared (relative max error, printed; the run stops
if it exceeds `--parity-tol`). Each round times `--steps` calls of every mode in one framework,
then in the other, the order swapping every round; medians over rounds are printed as img/s
with the ratio lvm-jax / PyTorch, then the machine and versions. PyTorch is
`benchmarks/torch_sunet.py` (the `bench` extra installs torch).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time


def _threads_from_argv(argv) -> int:
  for i, a in enumerate(argv):
    if a == "--threads" and i + 1 < len(argv):
      return int(argv[i + 1])
    if a.startswith("--threads="):
      return int(a.split("=", 1)[1])
  return 2


# Set before jax and torch initialise their thread pools.
_THREADS = _threads_from_argv(sys.argv[1:])
os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import jax  # noqa: E402
import jaxlib  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from lvm_jax import models  # noqa: E402
from lvm_jax.convert import torch_to_flax  # noqa: E402

MODES = ("forward", "encode", "train")


def _cpu_name() -> str:
  try:
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


class JaxRunner:
  """Compiled forward, encode and train step of lvm-jax for one preset and batch."""

  def __init__(self, preset: str, images: np.ndarray, seed: int = 0):
    fields = dict(models.PRESETS[preset], dtype="float32")
    self.module = module = models.build(fields)
    self.params = models.init_params(module, seed)
    self.images = jnp.asarray(images.transpose(0, 2, 3, 1))  # NCHW -> NHWC
    tx = optax.adam(1e-4)
    self.opt_state = tx.init(self.params)

    def forward(p, x):
      return module.apply({"params": p}, x, train=False)["reconstruction"]

    def encode(p, x):
      return module.apply({"params": p}, x, train=False, method=module.encode)["embedding"]

    def train_step(p, o, x):
      def loss_fn(p):
        return jnp.mean((forward(p, x) - x) ** 2)
      loss, grads = jax.value_and_grad(loss_fn)(p)
      updates, o = tx.update(grads, o, p)
      return optax.apply_updates(p, updates), o, loss

    self.compile_s = {}
    t0 = time.perf_counter()
    self._forward = jax.jit(forward).lower(self.params, self.images).compile()
    self.compile_s["forward"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    self._encode = jax.jit(encode).lower(self.params, self.images).compile()
    self.compile_s["encode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    self._train = jax.jit(train_step, donate_argnums=(0, 1)).lower(
        self.params, self.opt_state, self.images).compile()
    self.compile_s["train"] = time.perf_counter() - t0
    self.reference_output = np.asarray(self._forward(self.params, self.images)).transpose(0, 3, 1, 2)
    self.torch_state = torch_to_flax.params_to_torch(jax.device_get(self.params))

  def run(self, mode: str) -> None:
    if mode == "forward":
      self._forward(self.params, self.images).block_until_ready()
    elif mode == "encode":
      self._encode(self.params, self.images).block_until_ready()
    else:
      self.params, self.opt_state, loss = self._train(self.params, self.opt_state, self.images)
      loss.block_until_ready()


class TorchRunner:
  """The same three modes on `torch_sunet.SUNet`, eager, float32."""

  def __init__(self, preset: str, images: np.ndarray, state: dict, threads: int, device: str):
    import torch  # pylint: disable=g-import-not-at-top
    import torch_sunet  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(threads)
    self.torch, self.device = torch, device
    self.model = torch_sunet.SUNet(**torch_sunet.config_of(models.PRESETS[preset]))
    missing, unexpected = self.model.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False)
    derived = torch_to_flax.DERIVED_BUFFERS + tuple(torch_to_flax.UNUSED_PUBLISHED)
    bad = [k for k in missing if not any(d in k for d in derived)]
    if bad or unexpected:
      raise RuntimeError(f"weights do not fit the PyTorch model: missing {bad}, "
                         f"unexpected {unexpected}")
    self.model.eval()  # no dropout / stochastic depth: the same network as lvm-jax's train=False
    self.model.to(device)
    self.images = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
    with torch.inference_mode():
      self.reference_output = self._recon(self.model(self.images)).cpu().numpy()

  @staticmethod
  def _recon(out):
    return out[0] if isinstance(out, tuple) else out

  def run(self, mode: str) -> None:
    torch = self.torch
    if mode == "forward":
      with torch.inference_mode():
        self.model(self.images)
    elif mode == "encode":
      with torch.inference_mode():
        self.model.encode(self.images)[0].mean(1)
    else:
      self.opt.zero_grad(set_to_none=True)
      loss = torch.mean((self._recon(self.model(self.images)) - self.images) ** 2)
      loss.backward()
      self.opt.step()
    if self.device != "cpu":
      torch.cuda.synchronize()


def _time(runner, mode: str, steps: int) -> float:
  """Seconds per call, after one untimed call."""
  runner.run(mode)
  start = time.perf_counter()
  for _ in range(steps):
    runner.run(mode)
  return (time.perf_counter() - start) / steps


def bench(preset: str, batch: int, rounds: int, steps: int, threads: int, parity_tol: float,
          device: str = "cpu", seed: int = 0) -> dict:
  size = models.PRESETS[preset]["img_size"]
  images = (np.abs(np.random.default_rng(seed).standard_normal((batch, 3, size, size))) * 0.05
            ).astype(np.float32)
  jx = JaxRunner(preset, images, seed)
  pt = TorchRunner(preset, images, jx.torch_state, threads, device)
  ref = pt.reference_output
  parity = float(np.abs(jx.reference_output - ref).max() / np.abs(ref).max())
  print(f"{preset}@{batch}: lvm-jax vs PyTorch forward, relative max error {parity:.2e}; "
        f"lvm-jax compile (s): " + ", ".join(f"{k} {v:.1f}" for k, v in jx.compile_s.items()),
        flush=True)
  if not parity <= parity_tol:
    raise SystemExit(f"parity check failed: {parity:.2e} > {parity_tol:.0e}")
  times = {(fw, m): [] for fw in ("jax", "torch") for m in MODES}
  for r in range(rounds):
    order = (("jax", jx), ("torch", pt)) if r % 2 == 0 else (("torch", pt), ("jax", jx))
    for name, runner in order:
      for mode in MODES:
        times[(name, mode)].append(_time(runner, mode, steps))
    print(f"  round {r + 1}/{rounds}: " + "  ".join(
        f"{m} jax {batch / times[('jax', m)][-1]:.1f} torch {batch / times[('torch', m)][-1]:.1f}"
        for m in MODES) + " img/s", flush=True)
  out = {"preset": preset, "batch": batch, "img_size": size, "parity": parity,
         "compile_s": jx.compile_s}
  for m in MODES:
    j = batch / statistics.median(times[("jax", m)])
    t = batch / statistics.median(times[("torch", m)])
    ratios = [tt / tj for tj, tt in zip(times[("jax", m)], times[("torch", m)])]
    out[m] = {"jax": j, "torch": t, "ratio": j / t, "ratio_min": min(ratios),
              "ratio_max": max(ratios)}
  return out


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default="tiny:16,lvm_100m:4",
                      help="comma-separated PRESET:BATCH")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--steps", type=int, default=3, help="timed calls per mode per round")
  parser.add_argument("--threads", type=int, default=_THREADS)
  parser.add_argument("--parity-tol", type=float, default=1e-4)
  parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                      help="torch's device; lvm-jax runs on jax's default device")
  args = parser.parse_args(argv)
  import torch  # pylint: disable=g-import-not-at-top
  if args.device == "cpu" and jax.default_backend() != "cpu":
    raise SystemExit(f"jax runs on {jax.default_backend()}: pass --device cuda, or set "
                     "JAX_PLATFORMS=cpu")
  if args.device == "cpu" and args.threads != os.cpu_count():
    print(f"warning: XLA's CPU pool uses all {os.cpu_count()} cores, torch {args.threads} threads")
  rows = []
  for item in args.configs.split(","):
    preset, batch = item.split(":")
    rows.append(bench(preset, int(batch), args.rounds, args.steps, args.threads,
                      args.parity_tol, args.device))
  print(f"\nmedians of {args.rounds} alternated rounds x {args.steps} calls, float32, "
        f"{args.device} ({args.threads} threads), img/s (ratio: lvm-jax / PyTorch, range over rounds)\n")
  print("| config, batch | mode | PyTorch | lvm-jax | lvm-jax / PyTorch |")
  print("| --- | --- | --- | --- | --- |")
  for r in rows:
    for m in MODES:
      v = r[m]
      print(f"| {r['preset']}, {r['batch']} ({r['img_size']} px) | {m} | {v['torch']:.1f} | "
            f"{v['jax']:.1f} | {v['ratio']:.2f}x ({v['ratio_min']:.2f}-{v['ratio_max']:.2f}) |")
  print()
  for r in rows:
    print(f"{r['preset']}@{r['batch']}: parity {r['parity']:.1e}, lvm-jax compile s: "
          + ", ".join(f"{k} {v:.1f}" for k, v in r["compile_s"].items()))
  print(f"machine: {_cpu_name()}, {os.cpu_count()} cores; {platform.platform()}; "
        f"python {platform.python_version()}, jax {jax.__version__}, "
        f"jaxlib {jaxlib.__version__}, "
        f"torch {torch.__version__}, numpy {np.__version__}; "
        f"jax device {jax.devices()[0].device_kind}"
        + (f", torch device {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))


if __name__ == "__main__":
  main()
