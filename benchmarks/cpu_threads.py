"""Which thread split is fastest on this machine, measured side by side in one process.

Decode, model and encoder share the cores. This runs the real pipeline (`upscale_file`) on one
generated clip for every combination of torch intra-op threads and x264 threads, interleaved
round by round so that drift on a noisy machine hits every configuration alike, and reports the
median end-to-end fps of each; then the SR stage alone at batch 1 vs batch 4.

    python benchmarks/cpu_threads.py --model safdn-tiny-x4 --scale 4 --size 320x180
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from streamsr.bench import make_test_clip
from streamsr.config import UpscaleConfig
from streamsr.io.codecs import EncodeConfig
from streamsr.io.probe import probe
from streamsr.io.pyav import PyAVDecoder
from streamsr.run import upscale_file
from streamsr.stages import make_upscaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="safdn-tiny-x4")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="medium", help="x264 preset (the default pipeline's: medium)")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    cores = os.cpu_count() or 1
    torch_threads = sorted({1, cores})
    encoder_threads = sorted({0, 1, cores})  # 0: x264 decides (its default)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip = make_test_clip(tmp / "clip.mp4", width=w, height=h, frames=args.frames)
        base = UpscaleConfig(scale=args.scale, model=args.model, device="cpu", precision="fp32", overwrite=True)
        up = make_upscaler(base)
        combos = [(t, e) for t in torch_threads for e in encoder_threads]
        fps: dict[tuple[int, int], list[float]] = {c: [] for c in combos}
        upscale_file(clip, tmp / "warm.mp4", base, upscaler=up)  # warm-up
        for _ in range(args.rounds):
            for t, e in combos:
                torch.set_num_threads(t)
                cfg = dataclasses.replace(base, encode=EncodeConfig(codec="libx264", preset=args.preset, threads=e))
                fps[(t, e)].append(upscale_file(clip, tmp / "out.mp4", cfg, upscaler=up).fps)
        torch.set_num_threads(cores)
        print(f"{args.model} {w}x{h} -> {w * args.scale}x{h * args.scale}, {args.frames} frames, x264 {args.preset}, "
              f"{cores} cores, median of {args.rounds} interleaved rounds")
        best = max(combos, key=lambda c: statistics.median(fps[c]))
        for c in combos:
            t, e = c
            mark = "  <- fastest" if c == best else ""
            print(f"  torch threads {t}  x264 threads {e or 'auto'}: {statistics.median(fps[c]):6.2f} fps end to end{mark}")

        info = probe(clip)
        with PyAVDecoder(clip, batch=4, info=info) as dec:
            frames = torch.cat([b.data for b in dec])
        sr: dict[int, list[float]] = {1: [], 4: []}
        up.upscale_frames(frames[:4])  # warm-up
        for _ in range(args.rounds):
            for batch in sr:
                t0 = time.perf_counter()
                for chunk in frames.split(batch):
                    up.upscale_frames(chunk)
                sr[batch].append(len(frames) / (time.perf_counter() - t0))
        for batch, rates in sr.items():
            print(f"  SR stage, batch {batch}: {statistics.median(rates):6.2f} fps")


if __name__ == "__main__":
    main()
