#!/usr/bin/env bash
# Packs training data a device call can carry (the whole tree it sends is capped at 64 MiB, and
# ../shared/data/train alone is ~76 MiB), plus Set5 and Set14 (~6 MB) for validation, into .data/
# (ignored by git via .git/info/exclude). Every training image goes, each in a folder named after its
# source folder (for `--sampling folder`); when they do not fit in BUDGET_MB, each is cut to one seeded
# random window holding that share of its area and stored again as lossless WebP, so the call keeps
# all 349 images' variety rather than a fifth of the images whole. Images too small for a window
# that still gives x4 crops go whole.
#   bash benchmarks/gpu_train_data.sh            # then: run(..., carry=[".data"])
set -euo pipefail
cd "$(dirname "$0")/.."
# 53: what fits beside the repository (4 MB) and Set5/Set14 when PyAV's wheel stays behind (training
# reads images through benchmarks/pillow_av there). Carrying the wheel too (36 MB) leaves 19.
src=${SRC:-../shared/data}; budget=${BUDGET_MB:-53}; dest=${DEST:-.data}  # DEST: for the tests
if [ "$dest" = .data ]; then
  mkdir -p .git/info
  grep -qx '/.data/' .git/info/exclude 2>/dev/null || echo '/.data/' >> .git/info/exclude
fi
rm -rf "$dest" && mkdir -p "$dest/train" "$dest/Set5" "$dest/Set14"
cp "$src"/bench/Set5/* "$dest/Set5/"
cp "$src"/bench/Set14/* "$dest/Set14/"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python3 - "$src/train" "$dest/train" "$budget" <<'PY'
import math, random, shutil, sys
from pathlib import Path

import av
import numpy as np

from streamsr.io.images import read_image

MIN_SIDE = 192  # an x4 HR crop (LR patch 48)
src, dst, budget = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) * 2**20
files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in {".png", ".webp"})


def read_shape(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:  # the header only: each image is decoded once, below
        stream = container.streams.video[0]
        return stream.height, stream.width


def window(shape: tuple[int, int], side: float) -> tuple[int, int] | None:
    """The cut's (height, width) at `side` of each dimension; None: too small to cut, it goes whole."""
    h, w = (round(n * side) for n in shape)
    return (h, w) if min(h, w) >= MIN_SIDE else None


shapes = {p: read_shape(p) for p in files}
sizes = {p: p.stat().st_size for p in files}
side = 1.0
for _ in range(4):  # images too small to cut go whole, and the rest share what they leave
    whole = sum(sizes[p] for p in files if window(shapes[p], side) is None)
    side = math.sqrt(min(1.0, 0.97 * (budget - whole) / (sum(sizes.values()) - whole)))  # 3% spare: re-encoded sizes vary
rng = random.Random(0)


def write_webp(rgb: np.ndarray, path: Path) -> None:
    with av.open(str(path), "w", format="webp") as out:
        stream = out.add_stream("libwebp")
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "bgra"
        stream.options = {"lossless": "1", "compression_level": "4"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="bgra")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


cut = 0
for p in files:
    folder = dst / p.parent.name
    folder.mkdir(exist_ok=True)
    if side >= 1 or (cut_shape := window(shapes[p], side)) is None:
        shutil.copy(p, folder / p.name)
        continue
    (h, w), (full_h, full_w) = cut_shape, shapes[p]
    y, x = rng.randrange(full_h - h + 1), rng.randrange(full_w - w + 1)
    rgb = read_image(p)[:, y : y + h, x : x + w].permute(1, 2, 0).numpy()
    write_webp(rgb, folder / f"{p.stem}.webp")
    cut += 1
used = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
print(f"{len(files)} training images ({cut} cut to {side * side:.0%} of their area), {used / 2**20:.1f} MiB, in {dst}")
if used > budget:
    sys.exit(f"{used / 2**20:.1f} MiB is over BUDGET_MB={budget / 2**20:.0f}: lower BUDGET_MB")
PY
