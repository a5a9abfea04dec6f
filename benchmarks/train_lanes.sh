#!/usr/bin/env bash
# How CPU training is run on the 2-core machines: two lanes of one thread each, each pinned to its
# own core (one 2-thread job is slower than two 1-thread jobs here), niced, each continuing from
# the shipped weights with a time budget so both finish when the working session needs them:
#   MINUTES=130 bash benchmarks/train_lanes.sh        # then: streamsr eval ... --export weights/...
# Rerunning resumes each lane from its checkpoint (runs/<name>/last.pt); the schedule follows the
# time already spent. Pause both with `pkill -STOP -f "streamsr train"` while measuring anything.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
MINUTES=${MINUTES:-130}; TAG=${TAG:-s3}
mkdir -p runs/logs
lane() {  # core, scale, init, lr
  taskset -c "$1" nice -n 19 streamsr train -c "pipelines/train-safdn-x$2.toml" --init "$3" --lr "$4" \
    --out "runs/safdn-x$2-$TAG" --iterations 100000 --minutes "$MINUTES" --val-every 300 --threads 1 --resume \
    >> "runs/logs/x$2-$TAG.log" 2>&1
}
# x3 starts from the x2 body (new upsampler), so it takes the larger learning rate.
lane 0 "${LANE0_SCALE:-3}" weights/safdn-x2.safetensors 1e-3 &
lane 1 "${LANE1_SCALE:-4}" weights/safdn-x4.safetensors 5e-4 &
wait
