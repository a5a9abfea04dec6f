"""Upscale a single numpy frame (H, W, 3 uint8 RGB) with the engine, and save it as PNG.

    python examples/upscale_frame.py butterfly.png out.png --scale 4
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import streamsr
from streamsr.io import read_image, write_png


def upscale_rgb(upscaler: streamsr.Upscaler, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H*s, W*s, 3) uint8."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    y = upscaler(x)[0].mul(255).round().to(torch.uint8)
    return y.permute(1, 2, 0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("output")
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args()
    upscaler = streamsr.Upscaler(f"safdn-x{args.scale}")
    rgb = read_image(args.image).permute(1, 2, 0).numpy()
    out = upscale_rgb(upscaler, rgb)
    write_png(torch.from_numpy(out).permute(2, 0, 1), args.output)
    print(f"{rgb.shape[1]}x{rgb.shape[0]} -> {out.shape[1]}x{out.shape[0]}: {args.output}")


if __name__ == "__main__":
    main()
