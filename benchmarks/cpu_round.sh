#!/usr/bin/env bash
# Every CPU figure in docs/benchmarks.md in one go (about 10 minutes on 2 cores):
# per-stage bench for each target, the thread-split study, memory vs video length, live preview.
#   bash benchmarks/cpu_round.sh [OUT_DIR]
# Nothing else may run meanwhile: on 2 cores any other job distorts every ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results}; mkdir -p "$out"
echo "commit $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
bash benchmarks/cpu_bench.sh "$out"
echo "== thread split, end to end (default encoder: x264 medium)"
python benchmarks/cpu_threads.py --model safdn-tiny-x4 --scale 4 --size 320x180
echo "== memory vs video length"
bash benchmarks/memory_flat.sh
echo "== live preview, 320x240 source"
python benchmarks/live_bench.py "$out"
