#!/usr/bin/env bash
# How CPU training is run on the 2-core machines: two lanes of one thread each, each pinned to its
# own core (one 2-thread job is slower than two 1-thread jobs here), niced, each starting from
# shipped weights with a time budget so both finish when the working session needs them:
#   TAG=s7 MINUTES=130 bash benchmarks/train_lanes.sh    # then: streamsr eval ... --export weights/...
# Evaluate both runs/<name>/best.safetensors (best on the recipe's validation sets, Set5 and Set14)
# and final.safetensors (the EMA at the end): a few images can pick a checkpoint that is worse on the
# larger sets (weights/README.md).
# `python benchmarks/compare_weights.py weights/<file> <exported file>` applies the shipping rule.
# Rerunning resumes each lane from its checkpoint (runs/<name>/last.pt); the schedule follows the
# time already spent. Pause both with `pkill -STOP -f "streamsr train"` while measuring anything.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
MINUTES=${MINUTES:-130}; TAG=${TAG:?required, e.g. TAG=s7 (it names the runs and logs)}
# Fail here, not in each lane's log, when the package is not installed in the active environment.
command -v streamsr > /dev/null || { echo "streamsr is not on PATH: activate the venv (. .venv/bin/activate)" >&2; exit 1; }
mkdir -p runs/logs
lane() {  # core, scale, init, lr, run name, extra `streamsr train` flags (one string)
  local -a flags
  read -ra flags <<< "$6"  # split into words without glob expansion
  # Seed from the run name: each new cycle draws crops no earlier cycle drew (replaying seed 0's
  # crops gained less, weights/README.md, twenty-first session), and a rerun that resumes the same
  # run keeps its seed. A "--seed N" in FLAGS comes later on the command line, so it wins.
  local seed
  seed=$(cksum <<< "$5"); seed=${seed%% *}
  taskset -c "$1" nice -n 19 streamsr train -c "pipelines/train-safdn-x$2.toml" --init "$3" --lr "$4" \
    --out "runs/safdn-$5" --iterations 100000 --minutes "$MINUTES" --val-every 300 --threads 1 --resume \
    --seed "$seed" "${flags[@]}" >> "runs/logs/$5.log" 2>&1
}
# Each lane is "SCALE INIT LR [NAME [FLAGS...]]"; NAME (default xSCALE-TAG) names runs/safdn-NAME
# and its log, so two lanes of one scale can be compared side by side; FLAGS (e.g. "--patch 64")
# override the recipe for that lane (a lane's seed follows from NAME, see lane()).
# The defaults continue x2 and x4 from their shipped weights: a fresh cosine cycle on x4 gave
# +0.09 dB Set5 (ninth session), while x4 restarted from a newer x2 body only just passed x4
# continued from itself (eighth; weights/README.md). To restart a scale from the x2 body instead
# (new upsampler): LANE1="3 weights/safdn-x2.safetensors 1e-3".
read -r s0 i0 r0 n0 f0 <<< "${LANE0:-2 weights/safdn-x2.safetensors 1e-3}"
read -r s1 i1 r1 n1 f1 <<< "${LANE1:-4 weights/safdn-x4.safetensors 1e-3}"
lane 0 "$s0" "$i0" "$r0" "${n0:-x$s0-$TAG}" "${f0:-}" &
lane 1 "$s1" "$i1" "$r1" "${n1:-x$s1-$TAG}" "${f1:-}" &
wait
