"""Upscale a video file from Python, with a progress callback.

    python examples/upscale_file.py examples/media/sample.mp4 --scale 2
"""

from __future__ import annotations

import argparse

import streamsr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("-o", "--output", default=None)
    args = parser.parse_args()

    done = 0

    def progress(frames: int) -> None:
        nonlocal done
        done += frames
        print(f"\r{done} frames", end="", flush=True)

    config = streamsr.UpscaleConfig(scale=args.scale, overwrite=True)
    result = streamsr.upscale(args.video, args.output, config, on_progress=progress, on_warning=print)
    print(f"\nwrote {result.output}: {result.frames} frames, {result.fps:.2f} fps end to end")


if __name__ == "__main__":
    main()
