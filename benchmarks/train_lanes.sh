#!/usr/bin/env bash
# How this session's CPU training was run after x2: two lanes of one thread each (2-core machine).
#   lane A: x4 from the x2 body
#   lane B: real-time x2, then real-time x4 from it, then x3 from the x2 body
# Each run resumes from its own checkpoint if interrupted (rerun this script).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
x2=runs/safdn-x2/best.safetensors
train() { nice -n 19 streamsr train --threads 1 --resume "$@"; }
(train -c pipelines/train-safdn-x4.toml --init "$x2" --iterations "${X4_ITERS:-1300}" > train-x4.log 2>&1) &
(train -c pipelines/train-safdn-rt-x2.toml --iterations "${RT_ITERS:-1500}" > train-rt-x2.log 2>&1 &&
 train -c pipelines/train-safdn-rt-x4.toml --init runs/safdn-rt-x2/best.safetensors --iterations "${RT_ITERS:-1500}" > train-rt-x4.log 2>&1 &&
 train -c pipelines/train-safdn-x3.toml --init "$x2" --iterations "${X3_ITERS:-800}" > train-x3.log 2>&1) &
wait
