"""Which resampler brings the model's output to a target size: quality at a non-integer factor, and speed.

    python benchmarks/resample.py val/DIV2K256 Set5 Set14 --factor 2.5

A target size is reached by the smallest model scale at or above it, then a resampler. This scores,
for LR = HR / 4 (MATLAB bicubic) and a target of `factor` x LR (ground truth: HR resized there the
same way), Y-PSNR with a 4 px border of:

- bicubic straight from LR to the target (swscale's, as a player or `ffmpeg -vf scale` does it),
- the model at the next scale up, brought down to the target by each of swscale's resamplers,
- the model at the next scale down, brought up by Lanczos.

The resampler is chosen on the first (validation) set and reported on the others. Speed is swscale's
time to resample an upscaled 720x480 frame (x3: 2160x1440) to 1920x1080, per resampler.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import av
import numpy as np
import torch

from streamsr.config import data_path
from streamsr.io.images import read_image
from streamsr.models import load_model
from streamsr.train.degrade import imresize, modcrop
from streamsr.train.evaluate import evaluation_upscaler, upscale_function
from streamsr.train.metrics import psnr

RESAMPLERS = ("lanczos", "spline", "bicubic", "area", "bilinear")


def swscale(img: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:
    """(3, H, W) uint8 resized to (w, h) by swscale's `how`."""
    frame = av.VideoFrame.from_ndarray(img.permute(1, 2, 0).contiguous().numpy(), format="rgb24")
    out = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation=how.upper()).to_ndarray()
    return torch.from_numpy(out).permute(2, 0, 1)


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".webp", ".jpg", ".bmp"))


def score(folder: Path, factor: float, up: dict[int, object]) -> dict[str, float]:
    low, high = math.floor(factor), math.ceil(factor)
    totals: dict[str, list[float]] = {}
    for path in images(folder):
        hr = modcrop(read_image(path), 8)
        lr = imresize(hr, 1 / 4)
        h, w = lr.shape[-2:]
        size = (round(w * factor), round(h * factor))
        gt = imresize(hr, factor / 4, out_hw=(size[1], size[0]))
        results = {"bicubic straight (swscale)": swscale(lr, size, "bicubic")}
        above, below = up[high](lr), up[low](lr)
        for how in RESAMPLERS:
            results[f"x{high} model, then {how}"] = swscale(above, size, how)
        results[f"x{high} model, then MATLAB bicubic (antialiased)"] = imresize(above, factor / high, out_hw=(size[1], size[0]))
        results[f"x{low} model, then lanczos"] = swscale(below, size, "lanczos")
        for name, img in results.items():
            totals.setdefault(name, []).append(psnr(img, gt, crop_border=4))
    return {name: float(np.mean(v)) for name, v in totals.items()}


def speed(repeats: int = 10) -> dict[str, float]:
    frame = torch.randint(0, 256, (3, 1440, 2160), dtype=torch.uint8)
    seconds = {}
    for how in RESAMPLERS:
        swscale(frame, (1920, 1080), how)
        start = time.perf_counter()
        for _ in range(repeats):
            swscale(frame, (1920, 1080), how)
        seconds[how] = (time.perf_counter() - start) / repeats
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", help="folders of HR images (first: the one the choice is made on)")
    parser.add_argument("--factor", type=float, default=2.5)
    args = parser.parse_args()
    low, high = math.floor(args.factor), math.ceil(args.factor)
    up = {s: upscale_function(evaluation_upscaler(load_model(f"safdn-x{s}"))) for s in {low, high}}
    table = {}
    for name in args.sets:
        folder = data_path(name) if (Path(name).is_dir() or "/" in name) else data_path(f"bench/{name}")
        table[Path(name).name] = score(folder, args.factor, up)
    sets = list(table)
    print(f"| LR x{args.factor:g} to the target | " + " | ".join(sets) + " |")
    print("| --- |" + " --- |" * len(sets))
    for method in table[sets[0]]:
        print(f"| {method} | " + " | ".join(f"{table[s][method]:.2f}" for s in sets) + " |")
    print()
    print("| swscale resampler | ms per 2160x1440 -> 1920x1080 frame |")
    print("| --- | --- |")
    for how, s in speed().items():
        print(f"| {how} | {s * 1000:.1f} |")


if __name__ == "__main__":
    main()
