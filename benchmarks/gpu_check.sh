#!/usr/bin/env bash
# The device check (issue 4): one command, no network, < 8 minutes on an H100/H200.
#   1. installs the carried wheels (.whl/: PyAV, DALI joined from parts; see dali_parts.sh),
#   2. runs the test suite with STREAMSR_REQUIRE_GPU=1 (GPU tests must run, not skip),
#   3. benchmarks on generated clips and prints one table last.
# On a machine without CUDA it runs everything up to the GPU-only steps (smoke sizes).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ -d .whl ]; then
  bash benchmarks/dali_parts.sh join .whl || exit 1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
  STREAMSR_REQUIRE_GPU=1 timeout 240 python3 -m pytest -q -x -m "needs_cuda or needs_dali" tests 2>&1 | tee "$OUT/gpu-tests.log"
  timeout 300 python3 benchmarks/gpu_bench.py --json "$OUT/gpu-bench.json" 2>&1 | tee "$OUT/gpu-bench.log"
else
  echo "no CUDA here: running the CPU-capable parts only"
  timeout 300 python3 -m pytest -q -m "needs_cuda or needs_dali" tests 2>&1 | tail -3
  timeout 300 python3 benchmarks/gpu_bench.py --smoke --json "$OUT/gpu-bench.json"
fi
