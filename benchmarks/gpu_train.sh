#!/usr/bin/env bash
# On a lent GPU (issue 3): continue SAFDN training from the shipped weights for a fixed time per
# scale and write the new weights to $OUT. Nothing is downloaded: pack the data first, here, with
# `bash benchmarks/gpu_train_data.sh`, and carry `.data`. The device image has Pillow and no PyAV,
# so training reads images through benchmarks/pillow_av there; carry `.whl` (the PyAV wheel,
# /work/.library/device/README.md says how to fetch it) only with a 19 MiB `.data`. One call, e.g.:
#   CALL_SECONDS=560 SCALES=3 bash benchmarks/gpu_train.sh     # run(..., timeout_s=580)
#   SCALES="4" MINUTES=7 bash benchmarks/gpu_train.sh
#   SCALES="2 4" MINUTES=3.5 bash benchmarks/gpu_train.sh
#   SCALES="3" INIT_3=runs/safdn-x3-s35a/final.safetensors FLAGS="--blocks 10 --luma-weight 2" bash benchmarks/gpu_train.sh
# INIT_<scale> replaces that scale's starting file (default: the shipped one; carry it too when
# git ignores it, as it does runs/); FLAGS adds `streamsr train` options for every scale.
# LR defaults to 1e-4: five-minute cycles at 2e-4 to 5e-4 from the shipped (averaged) files ended
# below them (docs/benchmarks.md, GPU). The cosine schedule runs over MINUTES of training steps
# (`streamsr train --minutes`), so the learning rate has decayed when the time is up; validation on
# Set5 and Set14 adds a few seconds each time.
# CALL_SECONDS (one scale only) sets MINUTES to what is left of a call that long, less loading and
# copying, and stops training short of the call's end so the weights still come back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}; mkdir -p "$OUT"
SCALES=${SCALES:-4}; MINUTES=${MINUTES:-7}; BATCH=${BATCH:-64}; LR=${LR:-1e-4}; VAL_EVERY=${VAL_EVERY:-500}
source benchmarks/device_env.sh || exit 1
read -ra flags <<< "${FLAGS:-}"  # split into words without glob expansion
[ -d .data/train ] || { echo "no .data/train: run benchmarks/gpu_train_data.sh here and carry .data" >&2; exit 2; }
if [ -n "${CALL_SECONDS:-}" ]; then
  MINUTES=$(python3 -c "print(round(max(1.0, ($CALL_SECONDS - $SECONDS - 90) / 60), 2))")  # 90 s: loading, last validation, copies
  echo "training for $MINUTES minutes (flags: ${flags[*]})"
fi
limit() {  # seconds one scale's training may take: its minutes and 3 for loading, or what is left of the call
  if [ -n "${CALL_SECONDS:-}" ]; then echo $((CALL_SECONDS - SECONDS - 20)); else python3 -c "print(int($MINUTES * 60 + 180))"; fi
}
for s in $SCALES; do
  init_var="INIT_$s"; init=${!init_var:-weights/safdn-x$s.safetensors}
  timeout "$(limit)" python3 -m streamsr train -c "pipelines/train-safdn-x$s.toml" \
    --init "$init" --out "$OUT/run-x$s" --iterations 10000000 --minutes "$MINUTES" \
    --batch "$BATCH" --lr "$LR" --val-every "$VAL_EVERY" --data .data/train --val .data/Set5 --val .data/Set14 "${flags[@]}" 2>&1 | tee "$OUT/train-x$s.log"
  cp "$OUT/run-x$s/best.safetensors" "$OUT/safdn-x$s.safetensors" 2>/dev/null || echo "x$s: no weights written" >&2
  # The final EMA too: with 19 validation images choosing, the best file is not always the better one.
  cp "$OUT/run-x$s/final.safetensors" "$OUT/safdn-x$s.final.safetensors" 2>/dev/null || true
done
# Only files two folders down come back, and at most 8: keep the weights and logs, drop checkpoints.
rm -rf "$OUT"/run-x*
ls -l "$OUT"
