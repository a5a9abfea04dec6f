#!/usr/bin/env bash
# On a lent GPU (issue 3): resume SAFDN training from the shipped weights for a fixed time and
# write the new weights to $OUT. Nothing is downloaded: the training images must travel with the
# call (copy ../shared/data/train into an excluded folder of the repo, e.g. .data/train, and carry it).
#   MINUTES=7 SCALE=4 bash benchmarks/gpu_train.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}; SCALE=${SCALE:-4}; MINUTES=${MINUTES:-7}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"; fi
data=${DATA:-.data/train}
# ~25 it/s is a guess for an H100 at batch 64; the schedule ends when the time does.
iters=$(( MINUTES * 60 * ${ITS_PER_S:-20} ))
timeout $(( MINUTES * 60 + 120 )) python3 -m streamsr train -c "pipelines/train-safdn-x$SCALE.toml" \
  --init "weights/safdn-x$SCALE.safetensors" --out "$OUT/run" --iterations "$iters" --batch 64 --val-every 1000 \
  --data "$data" --val .data/Set5 2>&1 | tee "$OUT/train.log"
cp "$OUT/run/best.safetensors" "$OUT/safdn-x$SCALE.safetensors" 2>/dev/null || true
