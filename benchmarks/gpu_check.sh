#!/usr/bin/env bash
# The GPU check: one command, no network, < 8 minutes on an H100/H200.
#   1. installs wheels from a local folder if the machine lacks packages (see device_env.sh),
#   2. runs the GPU tests with STREAMSR_REQUIRE_GPU=1 (they must run, not skip),
#   3. times the model's forward alone (gpu_forward.py: layouts, precisions, the top kernels) and
#      its two ways to fuse (fuse_memory.py: peak memory and time, whole against part by part) and
#      its attention's statistics (attention_window.py: windowed against global),
#   4. benchmarks on generated clips (FRAMES each) and prints one table last.
# On a machine without CUDA it runs everything up to the GPU-only steps (smoke sizes).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}; mkdir -p "$OUT"
source benchmarks/device_env.sh || exit 1

# PARTS picks steps: PARTS=tests ...; PARTS=bench ...
PARTS=${PARTS:-tests forward bench}; FRAMES=${FRAMES:-96}
want() { [[ " $PARTS " == *" $1 "* ]]; }
# DALI's tests run where DALI is installed; without it, STREAMSR_REQUIRE_GPU=1 would turn their
# skips into failures.
marks="needs_cuda and not needs_dali"  # DALI's tests carry both marks
python3 -c "import nvidia.dali" 2>/dev/null && marks="needs_cuda or needs_dali" || echo "DALI not installed: its tests and decode row are left out"

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
  if want tests; then
    STREAMSR_REQUIRE_GPU=1 timeout "${TESTS_TIMEOUT:-240}" python3 -m pytest -q -rf -m "$marks" tests 2>&1 | tee "$OUT/gpu-tests.log"
  fi
  if want forward; then
    timeout 120 python3 benchmarks/gpu_forward.py 2>&1 | tee "$OUT/gpu-forward.log"
    timeout 120 python3 benchmarks/fuse_memory.py --size 960x540 --frames 4 --runs 1 2>&1 | tee "$OUT/fuse-memory.log"
    timeout 120 python3 benchmarks/attention_window.py --size 960x540 --frames 4 2>&1 | tee "$OUT/attention-window.log"
  fi
  if want bench; then
    timeout "${BENCH_TIMEOUT:-300}" python3 benchmarks/gpu_bench.py --frames "$FRAMES" --json "$OUT/gpu-bench.json" 2>&1 | tee "$OUT/gpu-bench.log"
    # DALI on NVDEC against PyAV, frame for frame, on the shipped H.264 sample.
    python3 -c "import nvidia.dali" 2>/dev/null && timeout 120 python3 benchmarks/decode.py examples/media/sample.mp4 --frames 48 2>&1 | tee "$OUT/decode.log"
  fi
else
  echo "no CUDA here: running the CPU-capable parts only"
  if want tests; then timeout 300 python3 -m pytest -q -m "needs_cuda or needs_dali" tests 2>&1 | tail -3; fi
  if want forward; then
    timeout 300 python3 benchmarks/gpu_forward.py --frames 1 --size 64x36 | tail -3
    timeout 300 python3 benchmarks/fuse_memory.py --size 64x36 --runs 1
    timeout 300 python3 benchmarks/attention_window.py --size 128x72 --rounds 1 | tail -1
  fi
  if want bench; then timeout 300 python3 benchmarks/gpu_bench.py --smoke --json "$OUT/gpu-bench.json"; fi
fi
