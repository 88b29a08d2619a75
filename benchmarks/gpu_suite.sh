#!/usr/bin/env bash
# The benchmarks of one GPU in one go (under 8 minutes on one H200), printed as one table:
#   1. training: lvm_100m train step, batch 256, 128 px, float32 and bfloat16 (train_throughput.py)
#   2. export:   lvm_100m encoder + embedding, batch 512, bfloat16 (export_throughput.py --model-only)
#   3. PyTorch:  lvm-jax against benchmarks/torch_sunet.py, lvm_100m batch 64, float32, alternated
#                rounds (vs_torch.py --device cuda); skipped when torch with CUDA is absent
# Needs jax (with its CUDA plugin), flax, optax and numpy; torch only for step 3.
#
#   bash benchmarks/gpu_suite.sh            # on the GPU machine
#   bash benchmarks/gpu_suite.sh --smoke    # tiny configs on CPU: checks that the suite runs
#
# Logs go to $LOG_DIR (default: a new temporary folder), one per step; each step has a time
# limit so that the suite ends in time even if one of them hangs.
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
LOG_DIR=${LOG_DIR:-$(mktemp -d -t lvm_gpu_suite.XXXXXX)}
mkdir -p "$LOG_DIR"
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # lvm_jax from this checkout, installed or not

if (( SMOKE )); then
  export JAX_PLATFORMS=cpu
  TRAIN=(--preset tiny --batch 4 --steps 2 --warmup 1 --dtype float32)
  EXPORT=(--preset tiny --batch 8 --steps 2 --model-only --dtype bfloat16)
  TORCH=(--configs tiny:4 --rounds 2 --steps 1 --device cpu)
  LIMITS=(600 300 600)
else
  TRAIN=(--preset lvm_100m --batch 256 --steps 20 --warmup 3 --dtype float32,bfloat16)
  EXPORT=(--preset lvm_100m --batch 512 --steps 10 --model-only --dtype bfloat16)
  # GPU float32 matmuls may use TF32 in either framework: a looser parity check.
  TORCH=(--configs lvm_100m:64 --rounds 5 --steps 5 --device cuda --parity-tol 2e-2)
  LIMITS=(210 90 150)
fi

run_step() {  # name, limit (s), command...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$LOG_DIR/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc after $((SECONDS - start)) s (log $LOG_DIR/$name.log)" >&2
  return 0
}

run_step train "${LIMITS[0]}" "$PY" benchmarks/train_throughput.py "${TRAIN[@]}"
run_step export "${LIMITS[1]}" "$PY" benchmarks/export_throughput.py "${EXPORT[@]}"
if "$PY" -c "import torch, sys; sys.exit(0 if ($SMOKE or torch.cuda.is_available()) else 1)" \
    2> /dev/null; then
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.45 run_step vs_torch "${LIMITS[2]}" \
      "$PY" benchmarks/vs_torch.py "${TORCH[@]}"
else
  echo "vs_torch: skipped (no torch with CUDA)" > "$LOG_DIR/vs_torch.log"
fi

"$PY" - "$LOG_DIR" <<'EOF'
"""One table from the three logs."""
import ast, pathlib, re, sys

logs = pathlib.Path(sys.argv[1])
read = lambda name: (logs / f"{name}.log").read_text() if (logs / f"{name}.log").exists() else ""
rows = []
train = read("train")
for line in train.splitlines():
  cells = [c.strip() for c in line.split("|")]
  if len(cells) == 11 and cells[0] != "preset":
    rows.append(("training", f"{cells[0]}, batch {cells[1]}, {cells[2]}", f"{cells[6]} img/s",
                 f"compile {cells[4]} s, MFU {cells[8]}, {cells[10]}"))
for line in read("export").splitlines():
  if line.startswith("model only:"):
    r = ast.literal_eval(line.split(":", 1)[1].strip())
    rows.append(("export (encoder)", f"{r['preset']}, batch {r['batch']}, {r['dtype']}",
                 f"{r['images_per_second']} img/s", f"compile {r['compile_s']} s, {r['device']}"))
vs = read("vs_torch")
for line in vs.splitlines():
  m = re.match(r"\| (.+?) \| (forward|encode|train) \| ([\d.]+) \| ([\d.]+) \| (.+?) \|$", line)
  if m:
    rows.append((f"vs PyTorch: {m.group(2)}", m.group(1), f"{m.group(4)} img/s",
                 f"PyTorch {m.group(3)} img/s, ratio {m.group(5)}"))
machine = [l for l in vs.splitlines() if l.startswith("machine:")]
print("| benchmark | config | lvm-jax | notes |")
print("| --- | --- | --- | --- |")
for r in rows:
  print("| " + " | ".join(r) + " |")
for name in ("train", "export", "vs_torch"):
  text = read(name)
  if "skipped" in text:
    print(f"{name}: {text.strip()}")
  elif not any(r[0].startswith({"train": "training", "export": "export",
                                "vs_torch": "vs PyTorch"}[name]) for r in rows):
    print(f"{name}: no result (see {logs / (name + '.log')}): "
          + " / ".join(text.strip().splitlines()[-2:]))
if machine:
  print(machine[0])
EOF
