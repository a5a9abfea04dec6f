#!/usr/bin/env bash
# The CPU figures in docs/benchmarks.md: every model size at the target sizes, in one run.
#   bash benchmarks/cpu_bench.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results}; mkdir -p "$out"
run() { name=$1; shift; echo "== $name: streamsr bench $*"; streamsr bench "$@" --json "$out/$name.json"; echo; }
run x4-320x180-default -s 4 --size 320x180 --frames 8 --runs 2
run x4-320x180-rt      -s 4 --size 320x180 --frames 24 --runs 2 -m safdn-rt-x4
run x4-320x180-tiny    -s 4 --size 320x180 --frames 48 --runs 3 -m safdn-tiny-x4
run x2-640x360-default -s 2 --size 640x360 --frames 6 --runs 2
run x2-640x360-rt      -s 2 --size 640x360 --frames 12 --runs 2 -m safdn-rt-x2
run x2-640x360-tiny    -s 2 --size 640x360 --frames 24 --runs 3 -m safdn-tiny-x2
run x2-320x240-tiny    -s 2 --size 320x240 --frames 48 --runs 3 -m safdn-tiny-x2
