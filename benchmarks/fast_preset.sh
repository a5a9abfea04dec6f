#!/usr/bin/env bash
# End to end with the `fast` preset (tiny SAFDN, x264 veryfast) at x4 320x180 and x2 640x360:
# the encoder's share of the time, next to the SR stage, from `streamsr upscale`'s own summary.
#   bash benchmarks/fast_preset.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python -c "
from pathlib import Path
from streamsr.bench import make_test_clip
make_test_clip(Path('$tmp/360p.mp4'), width=640, height=360, frames=96)
make_test_clip(Path('$tmp/180p.mp4'), width=320, height=180, frames=96)
"
for args in "360p.mp4 -s 2" "180p.mp4 -s 4"; do
  set -- $args
  for preset in fast default; do
    model=$([ "$preset" = default ] && echo "-m safdn-tiny-x$3" || true)
    echo "\$ streamsr upscale $1 -p $preset $2 $3 $model"
    streamsr upscale "$tmp/$1" -o "$tmp/out.mp4" -p "$preset" "$2" "$3" $model --overwrite 2>&1 | tail -1
  done
done
