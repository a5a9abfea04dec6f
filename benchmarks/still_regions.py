"""Still regions: upscale only the blocks of a frame that changed, reuse the rest of the last output.

    python benchmarks/still_regions.py VIDEO [--frames 24] [--margin 32] [--model safdn-x2]

Two clips made from one frame of VIDEO (320x180) and coded with x264 at CRF 23: a *presenter*
(a 64x64 picture moving over a still background) and a *screen* (a still page of text-like strokes
with a 12x18 cursor moving over it). For every frame after the first, the blocks (16x16) whose mean
difference from what the output last showed there exceeds the reuse limit are found, grown by one
block, and the box around them is upscaled with `margin` pixels of context around it and
pasted into the last output. Reported: the PSNR of that composite against a full upscale of the
frame (lowest and mean, over the frames where something changed; and within the pasted box alone,
where seams would show), the share of the frame that was upscaled, and the model time against full
frames. Outside the box the composite keeps the output of earlier frames whose blocks differ from
the current one by codec noise only: a difference from a full upscale there is that noise not
redrawn, not a seam.
"""

from __future__ import annotations

import argparse
import math
import time

import av
import numpy as np
import torch
import torch.nn.functional as F
from reuse import code  # benchmarks/reuse.py: frames through x264 and back

from streamsr.models import load_model
from streamsr.stages.reuse import BLOCK, BLOCK_LIMIT, MARGIN
from streamsr.train.evaluate import evaluation_upscaler


def background(path: str, size: tuple[int, int] = (320, 180)) -> np.ndarray:
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == 120:
                return f.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
    raise SystemExit(f"{path}: fewer than 121 frames")


def presenter(bg: np.ndarray, n: int) -> list[np.ndarray]:
    patch = np.ascontiguousarray(bg[40:104, 200:264][::-1])
    out = []
    for i in range(n):
        a = bg.copy()
        x, y = 20 + 3 * i, 60 + int(10 * math.sin(i / 3))
        a[y:y + 64, x:x + 64] = patch
        out.append(a)
    return out


def screen(n: int, size: tuple[int, int] = (320, 180)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    page = np.full((size[1], size[0], 3), 245, np.uint8)
    for row in range(8, size[1] - 12, 14):  # lines of text-like strokes
        x = 8
        while x < size[0] - 20:
            w = int(rng.integers(3, 9))
            page[row:row + 9, x:x + w] = rng.integers(0, 90)
            x += w + int(rng.integers(1, 4))
    out = []
    for i in range(n):
        a = page.copy()
        x, y = 30 + 9 * i, 40 + 4 * i
        a[y:y + 18, x:x + 12] = (20, 20, 20)
        out.append(a)
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def run(frames: list[torch.Tensor], up, margin: int) -> tuple[list[float], list[float], float, float]:  # noqa: ANN001
    scale = up.scale
    shown_lr = frames[0].clone()  # what the output shows, block by block, as LR
    output = up.upscale_frames(frames[0][None])[0].clone()
    quality, inside, share, partial_s, full_s = [], [], [], 0.0, 0.0
    h, w = frames[0].shape[-2:]
    for frame in frames[1:]:
        t = time.perf_counter()
        full = up.upscale_frames(frame[None])[0]
        full_s += time.perf_counter() - t
        diff = (frame.float() - shown_lr.float()).abs().mean(0)[None, None]
        changed = (F.avg_pool2d(diff, BLOCK, ceil_mode=True) > BLOCK_LIMIT).float()
        changed = F.max_pool2d(changed, 3, stride=1, padding=1)[0, 0] > 0  # grown by one block
        t = time.perf_counter()
        area = 0
        rows, cols = torch.nonzero(changed.any(1)).flatten(), torch.nonzero(changed.any(0)).flatten()
        for box in ([(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)] if len(rows) else []):
            y0, y1 = box[0] * BLOCK, min(h, box[1] * BLOCK)
            x0, x1 = box[2] * BLOCK, min(w, box[3] * BLOCK)
            cy0, cy1, cx0, cx1 = max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)
            sr = up.upscale_frames(frame[:, cy0:cy1, cx0:cx1][None])[0]
            output[:, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                sr[:, (y0 - cy0) * scale:(y1 - cy0) * scale, (x0 - cx0) * scale:(x1 - cx0) * scale]
            shown_lr[:, y0:y1, x0:x1] = frame[:, y0:y1, x0:x1]
            area += (cy1 - cy0) * (cx1 - cx0)
        partial_s += time.perf_counter() - t
        if area:
            quality.append(psnr(output, full))
            inside.append(psnr(output[:, y0 * scale:y1 * scale, x0 * scale:x1 * scale],
                               full[:, y0 * scale:y1 * scale, x0 * scale:x1 * scale]))
        share.append(area / (h * w))
    return quality, inside, float(np.mean(share)), partial_s / full_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--margin", type=int, default=MARGIN)
    parser.add_argument("--model", default="safdn-x2")
    args = parser.parse_args()
    up = evaluation_upscaler(load_model(args.model))
    bg = background(args.video)
    print(f"| clip ({args.model}, margin {args.margin} px) | lowest / mean PSNR against a full upscale (dB) "
          "| the pasted box alone (seams) | share of the frame upscaled | model time against full frames |")
    print("| --- | --- | --- | --- | --- |")
    for name, frames in (("presenter", presenter(bg, args.frames)), ("screen", screen(args.frames))):
        quality, inside, share, ratio = run(code(frames, 23), up, args.margin)
        print(f"| {name} | {min(quality):.1f} / {np.mean(quality):.1f} | {min(inside):.1f} / {np.mean(inside):.1f} "
              f"| {100 * share:.0f}% | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
