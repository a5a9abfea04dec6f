#!/usr/bin/env bash
# Peak memory must not grow with video length: peak RSS of `streamsr upscale` on a
# 5 s and a 60 s generated clip (same size, same model), measured by GNU time.
#   bash benchmarks/memory_flat.sh [MODEL] [SCALE] [WxH]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-safdn-tiny-x2}; scale=${2:-2}; size=${3:-320x180}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
w=${size%x*}; h=${size#*x}
python - "$tmp" "$w" "$h" <<'PY'
import sys
from pathlib import Path
from streamsr.bench import make_test_clip
tmp, w, h = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for seconds in (5, 60):
    make_test_clip(tmp / f"clip{seconds}.mp4", width=w, height=h, frames=24 * seconds)
PY
for seconds in 5 60; do
  /usr/bin/time -f "%M %e" -o "$tmp/time$seconds" streamsr upscale "$tmp/clip$seconds.mp4" -o "$tmp/out$seconds.mp4" \
    -s "$scale" -m "$model" -q
  read -r kb secs < "$tmp/time$seconds"
  echo "${seconds} s clip ($((24 * seconds)) frames, $size -> x$scale, $model): peak RSS $((kb / 1024)) MiB, $secs s"
  eval "rss$seconds=$kb"
done
python -c "print(f'60 s / 5 s peak RSS: {$rss60 / $rss5:.3f}')"
